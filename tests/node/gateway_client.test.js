'use strict';
/*
 * web/sockjs-gateway.js (the gateway's client library) in Node over the stock sockjs-client,
 * against real gateways, once per transport where the transport matters:
 *   - reconnect delays: full jitter within min(maxDelayMs, minDelayMs * 2^attempt), against a
 *     port where nothing listens (injected random source, then Math.random), and the attempt
 *     count reset by a ready;
 *   - recovery: a session dropped while messages are published is told recovered: true and
 *     gets exactly the missed messages, in order, after the ready and before live ones; the
 *     event filter is sent again;
 *   - drain: SIGTERM closes with 1001, the library waits 1-2 s and reconnects to the gateway
 *     restarted on the same port; on the embedded engine that is recovered: false (a new epoch),
 *     on Redis (history in Redis, published meanwhile through another node) recovered: true;
 *   - token renewal: a token that expires during the session is renewed on the same session,
 *     which outlives a session that did not renew (closed 4002);
 *   - an invalid token (4001) is reported and retried; presence answers and errors; import().
 *
 * Run: GW_BINARY=build/sockjs-gateway node --test tests/node/
 * (needs tests/node/node_modules: `scripts/setup.sh --test`, or `npm ci` in tests/node, and
 * redis-server).
 */

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const { startGateway, stopGateway } = require('../js/gateway.js');
const { GATEWAY_ARGS, mintToken, publish, freePort, startRedis, stopRedis, within, deferred } =
    require('../js/fixtures.js');

const LIBRARY = path.join(__dirname, '..', '..', 'web', 'sockjs-gateway.js');
const SockJSGateway = require(LIBRARY);
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];

/* Bounds for every wait, generous for an ASan build on a loaded machine. */
const WAIT_MS = 20000;
const TEST_TIMEOUT_MS = 60000;
/* Timers may fire up to a millisecond before their delay when rounded. */
const TIMER_SLACK_MS = 2;

function setupProblem() {
    if (!fs.existsSync(path.join(__dirname, 'node_modules', 'sockjs-client', 'package.json'))) {
        return 'tests/node/node_modules is missing: scripts/setup.sh --test (or npm ci there)';
    }
    if (!process.env.GW_BINARY || !fs.existsSync(process.env.GW_BINARY)) {
        return 'GW_BINARY does not name the sockjs-gateway binary: build it first';
    }
    return null;
}

/*
 * One library instance and everything it did: lifecycle events, delivered messages, and, through
 * a SockJS subclass, every frame it sent or received per connection. wait(pred) resolves when
 * pred() holds, re-checked after each of those.
 */
class Observed {
    constructor(SockJS, url, opts) {
        this.log = [];
        this.msgs = [];
        this.conns = [];
        this.waiters = [];
        const self = this;
        const Recording = class extends SockJS {
            constructor(u, p, o) {
                super(u, p, o);
                this.frames = { url: u, out: [], in: [] };
                self.conns.push(this);
                this.addEventListener('message', (e) => {
                    this.frames.in.push(JSON.parse(e.data));
                    self.wake();
                });
            }

            send(data) {
                this.frames.out.push(JSON.parse(data));
                super.send(data);
            }
        };
        this.gw = SockJSGateway.connect(url, { SockJS: Recording, minDelayMs: 50,
            maxDelayMs: 1000, ...opts });
        for (const type of ['connecting', 'ready', 'disconnect', 'token', 'error']) {
            this.gw.onState(type, (info) => {
                this.log.push({ type, info, at: performance.now() });
                this.wake();
            });
        }
    }

    listen(name) {
        this.gw.on(name, (data, m) => {
            this.msgs.push({ ...m, at: performance.now(), afterReady: this.count('ready') });
            this.wake();
        });
        return this;
    }

    wake() {
        for (const w of this.waiters.splice(0)) {
            w();
        }
    }

    count(type) {
        return this.log.filter((e) => e.type === type).length;
    }

    events(type) {
        return this.log.filter((e) => e.type === type);
    }

    last() {
        return this.conns[this.conns.length - 1];
    }

    wait(pred, what, ms = WAIT_MS) {
        return within(ms, () => `${what}; lifecycle: ${JSON.stringify(this.log.map((e) =>
            [e.type, e.info.code, e.info.reason]))}; messages: ${this.msgs.map((m) =>
            `${m.scope}:${m.event}#${m.seq}`).join(' ')}`, new Promise((resolve) => {
            const check = () => {
                const v = pred();
                if (v) {
                    resolve(v);
                } else {
                    this.waiters.push(check);
                }
            };
            check();
        }));
    }

    /* Resolves with the n-th ready's info (1-based). */
    ready(n, what = `ready #${n}`) {
        return this.wait(() => this.events('ready')[n - 1], what).then((e) => e.info);
    }

    close() {
        this.gw.close();
    }
}

/* A user of its own per test, so that tests sharing a gateway never see each other's events. */
let serial = 0;
function identity(tag) {
    serial++;
    return { sub: `u-${tag}-${serial}`, client: `c-${tag}-${serial}`, site: `s-${tag}-${serial}` };
}

const pub = (apiPort, id, scope, event, data = {}) => publish(apiPort, scope === 'global'
    ? { scope, site: id.site, event, data }
    : { scope, site: id.site, ids: [scope === 'user' ? id.sub : id.client], event, data });

const problem = setupProblem();

if (problem) {
    test('sockjs-gateway.js test prerequisites', () => assert.fail(problem));
} else {
    const SockJS = require('sockjs-client');
    const opts = { timeout: TEST_TIMEOUT_MS };
    const binary = process.env.GW_BINARY;
    let gw;
    let url;

    before(async () => {
        gw = await startGateway(binary, { testApp: false, args: [...GATEWAY_ARGS,
            '--token-grace-ms', '1500', '--presence-query-interval-ms', '0'] });
        url = `http://127.0.0.1:${gw.port}/sockjs`;
    });

    after(async () => {
        if (gw) {
            await stopGateway(gw);
        }
    });

    test('loads through import() as the default export', opts, async () => {
        const mod = await import(pathToFileURL(LIBRARY).href);
        assert.equal(typeof mod.default.connect, 'function');
        assert.equal(mod.default.connect, SockJSGateway.connect);
    });

    test('reconnect delays: full jitter, capped, reset by a ready', opts, async () => {
        const port = await freePort();
        const id = identity('backoff');
        const rs = [0.99, 0.5, 0.999, 0.999, 0.25, 0.999, 0];
        const caps = [40, 80, 160, 300, 300, 300, 300];
        let i = 0;
        const o = new Observed(SockJS, `http://127.0.0.1:${port}/sockjs`, {
            transports: ['websocket'], minDelayMs: 40, maxDelayMs: 300,
            random: () => rs[i++ % rs.length], token: () => mintToken(id) });
        try {
            await o.wait(() => o.count('connecting') > rs.length, 'connect attempts');
            o.gw.close();
            const conn = o.events('connecting');
            const disc = o.events('disconnect');
            for (let k = 0; k < rs.length; k++) {
                const want = Math.floor(rs[k] * caps[k]);
                assert.equal(disc[k].info.delayMs, want, `delay of attempt ${k}`);
                assert.ok(disc[k].info.delayMs < caps[k]);
                const waited = conn[k + 1].at - disc[k].at;
                assert.ok(waited >= want - TIMER_SLACK_MS, `attempt ${k}: reconnected after ` +
                    `${waited} ms, before its delay of ${want} ms`);
                assert.ok(waited < want + 5000, `attempt ${k}: ${waited} ms for ${want} ms`);
            }
        } finally {
            o.close();
        }

        /* Math.random, and then a gateway on that port: the ready resets the attempts. */
        const m = new Observed(SockJS, `http://127.0.0.1:${port}/sockjs`, {
            transports: ['websocket'], minDelayMs: 20, maxDelayMs: 200,
            token: () => mintToken(id) });
        let g2;
        try {
            await m.wait(() => m.count('disconnect') >= 6, 'six failed attempts');
            m.events('disconnect').forEach((e, k) => {
                assert.ok(e.info.delayMs >= 0 && e.info.delayMs < Math.min(200, 20 * 2 ** k),
                    `Math.random delay ${e.info.delayMs} of attempt ${k}`);
                assert.equal(e.info.attempt, k + 1);
            });
            g2 = await startGateway(binary, { testApp: false, listen: `127.0.0.1:${port}`,
                args: GATEWAY_ARGS });
            await m.ready(1);
            const before = m.count('disconnect');
            m.last().close(3000, 'test drop');
            const d = await m.wait(() => m.events('disconnect')[before], 'disconnect after drop');
            assert.equal(d.info.code, 3000);
            assert.equal(d.info.attempt, 1, 'the ready reset the attempts');
            assert.ok(d.info.delayMs < 20, `first delay after a ready: ${d.info.delayMs}`);
            await m.ready(2);
        } finally {
            m.close();
            if (g2) {
                await stopGateway(g2);
            }
        }
    });

    test('an invalid token is reported (4001) and retried with a fresh one', opts, async () => {
        const id = identity('bad');
        let calls = 0;
        const o = new Observed(SockJS, url, { transports: ['websocket'],
            token: () => (++calls === 1 ? 'not.a.token' : mintToken(id)) });
        try {
            await o.ready(1);
            const err = o.events('error')[0];
            assert.ok(err, 'no error event');
            assert.deepEqual([err.info.type, err.info.code], ['auth', 4001]);
            assert.equal(o.events('disconnect')[0].info.code, 4001);
            assert.equal(calls, 2);
        } finally {
            o.close();
        }
    });

    test('presence: answers, and errors reject', opts, async () => {
        const id = identity('presence');
        const o = new Observed(SockJS, url, { transports: ['websocket'],
            token: () => mintToken(id) });
        try {
            /* Asked before the ready: sent once it comes. */
            const [user, client] = await within(WAIT_MS, 'presence answers',
                Promise.all([o.gw.presence('user'), o.gw.presence('client')]));
            assert.deepEqual(user, { scope: 'user', sessions: 1, users: { [id.sub]: 1 } });
            assert.equal(client.scope, 'client');
            assert.deepEqual(client.users, { [id.sub]: 1 });
            await assert.rejects(within(WAIT_MS, 'presence error', o.gw.presence('global')),
                /presence scope must be client or user/);
            const out = o.last().frames.out.filter((f) => 'presence' in f);
            assert.deepEqual(out, [{ presence: 'user' }, { presence: 'client' },
                { presence: 'global' }]);
        } finally {
            o.close();
        }
        await assert.rejects(o.gw.presence('user'), /closed/);
    });

    test('tokenInUrl: a bound polling session, recover in the URL', opts, async () => {
        const id = identity('url');
        let gate = null;
        const o = new Observed(SockJS, url, { transports: ['xhr-polling'], tokenInUrl: true,
            token: async () => {
                if (gate) {
                    await gate.promise;
                }
                return mintToken(id);
            } }).listen('*');
        try {
            await o.ready(1);
            await pub(gw.apiPort, id, 'client', 'one');
            await o.wait(() => o.msgs.length === 1, 'one');
            gate = deferred();
            o.last().close(3000, 'test drop');
            await o.wait(() => o.count('connecting') === 2, 'reconnect attempt');
            await pub(gw.apiPort, id, 'client', 'two');
            /* The embedded engine numbers a publish and keeps it in history before its 202
             * (pubsub_engine_local.c). */
            const pos = o.gw.positions();
            gate.resolve();
            const r2 = await o.ready(2);
            const q = new URL(o.last().frames.url).searchParams;
            const claims = JSON.parse(Buffer.from(q.get('token').split('.')[1], 'base64url'));
            assert.equal(claims.sub, id.sub, 'the token in the URL');
            assert.deepEqual(JSON.parse(q.get('recover')), pos);
            assert.deepEqual(o.last().frames.out, [{ events: ['*'] }], 'no token message');
            assert.deepEqual(r2.recovered, { user: true, client: true, global: true });
            await o.wait(() => o.msgs.length === 2, 'two, recovered');
            assert.deepEqual([o.msgs[1].event, o.msgs[1].seq], ['two', o.msgs[0].seq + 1]);
        } finally {
            o.close();
        }
    });

    for (const transport of TRANSPORTS) {
        describe(`over ${transport}`, () => {
            test('recovers the messages missed while away', opts, async () => {
                const id = identity(`rec-${transport}`);
                let gate = null;
                const o = new Observed(SockJS, url, { transports: [transport],
                    token: async () => {
                        if (gate) {
                            await gate.promise;
                        }
                        return mintToken(id);
                    } }).listen('live.*').listen('away.*');
                /* Sees every publish: once it has, the history holds them too. */
                const watch = new Observed(SockJS, url, { transports: ['websocket'],
                    token: () => mintToken(id) }).listen('*');
                try {
                    const r1 = await o.ready(1);
                    await watch.ready(1);
                    assert.deepEqual(r1.lost, []);
                    assert.deepEqual(r1.recovered, {});
                    for (const s of ['user', 'client', 'global']) {
                        assert.equal(typeof r1.positions[s].epoch, 'string', `${s} epoch`);
                        assert.equal(typeof r1.positions[s].seq, 'number', `${s} seq`);
                    }
                    await pub(gw.apiPort, id, 'user', 'live.1');
                    await o.wait(() => o.msgs.length === 1, 'live.1');
                    assert.equal(o.gw.positions().user.seq, o.msgs[0].seq);

                    gate = deferred();
                    o.last().close(3000, 'test drop');
                    await o.wait(() => o.count('connecting') === 2, 'reconnect attempt');
                    const away = [['user', 'away.1'], ['client', 'away.2'], ['user', 'away.3'],
                        ['global', 'away.4'], ['client', 'away.5']];
                    for (const [scope, event] of away) {
                        await pub(gw.apiPort, id, scope, event, { event });
                    }
                    /* Missed but not wanted: the replay filters it out. */
                    await pub(gw.apiPort, id, 'user', 'other.away');
                    await watch.wait(() => watch.msgs.length === 7, 'the watcher sees them');
                    const pos = o.gw.positions();
                    gate.resolve();

                    const r2 = await o.ready(2);
                    assert.equal(r2.reconnect, true);
                    assert.deepEqual(r2.recovered, { user: true, client: true, global: true });
                    assert.deepEqual(r2.lost, []);
                    const first = o.last().frames.out[0];
                    assert.deepEqual(Object.keys(first).sort(), ['events', 'recover', 'token']);
                    assert.deepEqual(first.recover, pos, 'recover = the positions at the drop');
                    assert.deepEqual(first.events, ['live.*', 'away.*'],
                        'the filter again, with the token');

                    await o.wait(() => o.msgs.length === 6, 'the 5 missed messages');
                    /* A presence answer proves the filter (sent before it) is in force. */
                    await within(WAIT_MS, 'presence', o.gw.presence('user'));
                    await pub(gw.apiPort, id, 'global', 'other.x');
                    await pub(gw.apiPort, id, 'user', 'live.2');
                    await o.wait(() => o.msgs.length === 7, 'live.2');
                    const got = o.msgs.slice(1);
                    assert.ok(got.every((m) => m.afterReady === 2), 'all after the ready');
                    assert.deepEqual(got.slice(0, 5).map((m) => m.event).sort(),
                        away.map(([, e]) => e), 'each missed message once');
                    assert.equal(got[5].event, 'live.2', 'live after the replay');
                    /* Per scope, the seqs the watcher saw, in its order. */
                    const seqs = (list, scope) => list.filter((m) => m.scope === scope)
                        .map((m) => m.seq);
                    for (const scope of ['user', 'client', 'global']) {
                        assert.deepEqual(seqs(got.slice(0, 5), scope), seqs(watch.msgs
                            .filter((m) => m.event.startsWith('away.')), scope),
                        `${scope}: replayed in order`);
                    }
                    assert.equal(got[5].seq,
                        watch.msgs.find((m) => m.event === 'other.away').seq + 1,
                        'live.2 follows the last user message, filtered or not');
                    /* The filter the server applies: other.x never reached the library. */
                    assert.ok(!o.last().frames.in.some((f) => /^other\./.test(f.event)),
                        'a filtered event was sent (live or replayed)');
                    assert.equal(o.count('error'), 0);
                } finally {
                    o.close();
                    watch.close();
                }
            });

            test('drain: 1001, a wait of 1-2 s, the restarted gateway says not recovered',
                opts, async () => {
                    const id = identity(`drain-${transport}`);
                    let g1 = await startGateway(binary, { testApp: false, args: GATEWAY_ARGS });
                    const port = g1.port;
                    const o = new Observed(SockJS, `http://127.0.0.1:${port}/sockjs`, {
                        transports: [transport], token: () => mintToken(id) }).listen('*');
                    let g2;
                    try {
                        const r1 = await o.ready(1);
                        await pub(g1.apiPort, id, 'user', 'e', { n: 1 });
                        await o.wait(() => o.msgs.length === 1, 'first message');
                        await stopGateway(g1);
                        g1 = null;
                        const d = await o.wait(() => o.events('disconnect')[0], 'the 1001');
                        assert.equal(d.info.code, 1001);
                        assert.ok(d.info.delayMs >= 1000 && d.info.delayMs < 2000,
                            `drain delay ${d.info.delayMs}`);
                        g2 = await startGateway(binary, { testApp: false,
                            listen: `127.0.0.1:${port}`, args: GATEWAY_ARGS });
                        const r2 = await o.ready(2);
                        const next = o.events('connecting')[1];
                        assert.ok(next.at - d.at >= 1000 - TIMER_SLACK_MS,
                            `reconnected ${next.at - d.at} ms after the 1001`);
                        assert.deepEqual(r2.recovered, { user: false, client: false,
                            global: false });
                        assert.deepEqual(r2.lost.sort(), ['client', 'global', 'user']);
                        assert.notEqual(r2.positions.user.epoch, r1.positions.user.epoch);
                        await pub(g2.apiPort, id, 'user', 'e', { n: 2 });
                        await o.wait(() => o.msgs.length === 2, 'a message after the restart');
                        assert.equal(o.gw.positions().user.seq, o.msgs[1].seq);
                    } finally {
                        o.close();
                        for (const g of [g1, g2]) {
                            if (g) {
                                await stopGateway(g);
                            }
                        }
                    }
                });

            test('renews an expiring token on the same session', opts, async () => {
                const id = identity(`token-${transport}`);
                const exp = Math.floor(Date.now() / 1000) + 3;
                const tokens = [];
                const o = new Observed(SockJS, url, { transports: [transport],
                    token: () => {
                        tokens.push(mintToken(tokens.length ? id : { ...id, exp }));
                        return tokens[tokens.length - 1];
                    } }).listen('*');
                /* The same expiry, never renewed: closed once the grace period is over. */
                const control = new SockJS(`${url}?token=${mintToken({ ...id, exp })}`, null,
                    { transports: [transport] });
                const controlClosed = new Promise((resolve) => {
                    control.onclose = (e) => resolve(e);
                });
                try {
                    await o.ready(1);
                    await o.wait(() => o.count('token') === 1, 'the renewal', 10000);
                    assert.equal(tokens.length, 2);
                    assert.deepEqual(o.last().frames.out.filter((f) => f.token).slice(-1),
                        [{ token: tokens[1] }]);
                    assert.ok(o.last().frames.in.some((f) => f.error === 'token expired'));
                    const c = await within(WAIT_MS, 'the control session\'s close', controlClosed);
                    assert.equal(c.code, 4002);
                    await pub(gw.apiPort, id, 'user', 'after.grace');
                    await o.wait(() => o.msgs.length === 1, 'a message after the grace period');
                    assert.equal(o.count('disconnect'), 0, 'the session was closed');
                    assert.equal(o.conns.length, 1);
                    assert.equal(o.count('error'), 0);
                } finally {
                    o.close();
                    control.close();
                }
            });
        });
    }

    test('Redis: the gateway restarted on the same port recovers from the history', opts,
        async () => {
            const redis = await startRedis();
            const engine = ['--engine', `redis://127.0.0.1:${redis.port}`];
            const id = identity('redis');
            let g1;
            let g2;
            let other;
            let gate = null;
            let o;
            let watch;
            try {
                g1 = await startGateway(binary, { testApp: false,
                    args: [...GATEWAY_ARGS, ...engine] });
                other = await startGateway(binary, { testApp: false,
                    args: [...GATEWAY_ARGS, ...engine] });
                const port = g1.port;
                o = new Observed(SockJS, `http://127.0.0.1:${port}/sockjs`, {
                    transports: ['websocket'], token: async () => {
                        if (gate) {
                            await gate.promise;
                        }
                        return mintToken(id);
                    } }).listen('*');
                watch = new Observed(SockJS, `http://127.0.0.1:${other.port}/sockjs`, {
                    transports: ['websocket'], token: () => mintToken(id) }).listen('*');
                await o.ready(1);
                await watch.ready(1);
                await pub(other.apiPort, id, 'user', 'before');
                await o.wait(() => o.msgs.length === 1, 'a message through the other node');
                gate = deferred();
                await stopGateway(g1);
                g1 = null;
                await o.wait(() => o.count('connecting') === 2, 'reconnect after the drain');
                await pub(other.apiPort, id, 'user', 'missed.1');
                await pub(other.apiPort, id, 'client', 'missed.2');
                await pub(other.apiPort, id, 'user', 'missed.3');
                await watch.wait(() => watch.msgs.length === 4, 'the watcher sees them');
                g2 = await startGateway(binary, { testApp: false, listen: `127.0.0.1:${port}`,
                    args: [...GATEWAY_ARGS, ...engine] });
                gate.resolve();
                const r2 = await o.ready(2);
                assert.deepEqual(r2.recovered, { user: true, client: true, global: true });
                await o.wait(() => o.msgs.length === 4, 'the missed messages');
                /* In order per scope, with the seqs the other node's session saw. */
                const bySeq = (list) => list.filter((m) => m.event.startsWith('missed.'))
                    .map((m) => `${m.scope} ${m.seq} ${m.event}`).sort();
                assert.deepEqual(bySeq(o.msgs), bySeq(watch.msgs));
                for (const scope of ['user', 'client']) {
                    const seqs = o.msgs.filter((m) => m.scope === scope).map((m) => m.seq);
                    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `${scope} in order`);
                }
                assert.ok(o.msgs.slice(1).every((m) => m.afterReady === 2));
            } finally {
                o?.close();
                watch?.close();
                for (const g of [g1, g2, other]) {
                    if (g) {
                        await stopGateway(g);
                    }
                }
                await stopRedis(redis);
            }
        });
}
