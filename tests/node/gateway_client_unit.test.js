'use strict';
/*
 * web/sockjs-gateway.js against a scripted stand-in for SockJS: the protocol decisions that a
 * real gateway shows only some of (what goes out first, the filter, positions and `lost` for
 * every mix of recovered scopes, presence queueing and errors, delays per close code, the
 * ready timeout, tokens in the URL). The real-gateway tests are gateway_client.test.js.
 */

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const SockJSGateway = require(path.join(__dirname, '..', '..', 'web', 'sockjs-gateway.js'));

const tick = () => new Promise((resolve) => setImmediate(resolve));

/* Each instance is one connection attempt; the test opens it, feeds it, drops it. */
function fakeSockJS() {
    const socks = [];
    class Fake {
        constructor(url, _protocols, options) {
            Object.assign(this, { url, options, readyState: 0, sent: [], transport: 'fake' });
            socks.push(this);
        }

        send(data) {
            this.sent.push(JSON.parse(data));
        }

        close(code = 1000, reason = 'Normal closure') {
            this.drop(code, reason);
        }

        open() {
            this.readyState = 1;
            this.onopen();
        }

        recv(obj) {
            this.onmessage({ data: JSON.stringify(obj) });
        }

        drop(code, reason = '') {
            if (this.readyState !== 3) {
                this.readyState = 3;
                this.onclose({ code, reason });
            }
        }
    }
    return { Fake, socks };
}

/* Connects with the fake; `next()` resolves with the next connection attempt's socket. */
function setup(opts = {}) {
    const { Fake, socks } = fakeSockJS();
    const log = [];
    const gw = SockJSGateway.connect('http://gw.test/sockjs', { SockJS: Fake, token: () => 'T',
        minDelayMs: 1, maxDelayMs: 4, ...opts });
    for (const type of ['connecting', 'ready', 'disconnect', 'token', 'error']) {
        gw.onState(type, (info) => log.push({ type, info }));
    }
    let seen = 0;
    const next = async () => {
        for (let i = 0; i < 2000 && socks.length <= seen; i++) {
            await new Promise((resolve) => setTimeout(resolve, 1));
        }
        assert.ok(socks.length > seen, 'no connection attempt');
        return socks[seen++];
    };
    const events = (type) => log.filter((e) => e.type === type).map((e) => e.info);
    return { gw, socks, next, events };
}

const pos = (seq, epoch) => ({ seq, epoch });
const READY = { user: pos(5, 'E'), client: pos(2, 'E'), global: pos(9, 'G') };

test('the library stays under 10 KB unminified', () => {
    const bytes = require('node:fs').statSync(require.resolve('../../web/sockjs-gateway.js')).size;
    assert.ok(bytes < 10000, `${bytes} bytes`);
});

test('the token with the filter; positions from ready and messages', async () => {
    const { gw, next, events } = setup();
    const got = [];
    gw.on('a.*', (d, m) => got.push(['a.*', m.event, d]));
    gw.on('b', (d, m) => got.push(['b', m.event, d]));
    const s = await next();
    assert.match(s.url, /^http:\/\/gw\.test\/sockjs$/);
    assert.equal(s.options.sessionId, 16);
    s.open();
    /* One message: the filter then applies to the replay too. */
    assert.deepEqual(s.sent, [{ token: 'T', events: ['a.*', 'b'] }]);
    s.recv({ ready: READY });
    assert.deepEqual(events('ready')[0], { reconnect: false, recovered: {}, lost: [],
        positions: READY, transport: 'fake' });
    for (const [event, seq] of [['a.x.y', 6], ['ab', 7], ['b', 8], ['bb', null]]) {
        s.recv({ scope: 'user', site: 'S', event, data: seq, seq });
    }
    assert.deepEqual(got, [['a.*', 'a.x.y', 6], ['b', 'b', 8]]);
    assert.deepEqual(gw.positions().user, pos(8, 'E'), 'every message moves seq, null none');

    /* Filter changes go once per turn; "*" stands for everything. */
    gw.on('c', () => {});
    gw.on('*', () => {});
    await tick();
    assert.deepEqual(s.sent.slice(1), [{ events: ['*'] }]);
    gw.off('*');
    gw.off('c');
    gw.off('a.*');
    await tick();
    assert.deepEqual(s.sent.slice(2), [{ events: ['b'] }]);
    gw.close();
    assert.equal(s.readyState, 3);
    assert.deepEqual(events('disconnect').pop(), { code: 1000, reason: 'closed', delayMs: 0,
        attempt: 0, willRetry: false });
    assert.equal(gw.state, 'closed');
});

test('reconnect: recover what was seen; recovered scopes resume, the others are lost',
    async () => {
        const { gw, next, events } = setup();
        gw.on('*', () => {});
        const s1 = await next();
        s1.open();
        s1.recv({ ready: { user: pos(5, 'E'), client: pos(null, null), global: pos(9, 'G') } });
        s1.recv({ scope: 'user', site: 'S', event: 'e', data: 1, seq: 6 });
        s1.recv({ scope: 'client', site: 'S', event: 'e', data: 1, seq: 3 });
        s1.drop(1006, 'broken');
        const s2 = await next();
        s2.open();
        /* client has a seq but no epoch: nothing to ask for. */
        assert.deepEqual(s2.sent, [{ token: 'T', recover: { user: pos(6, 'E'),
            global: pos(9, 'G') }, events: ['*'] }], 'the filter again, with the token');
        s2.recv({ ready: { user: { seq: 8, epoch: 'E', recovered: true },
            client: pos(4, 'F'), global: { seq: 1, epoch: 'H', recovered: false } } });
        const r = events('ready')[1];
        assert.equal(r.reconnect, true);
        assert.deepEqual(r.recovered, { user: true, global: false });
        assert.deepEqual(r.lost, ['client', 'global']);
        /* user: from where it was, moved on by the replay; the others: the ready's. */
        assert.deepEqual(r.positions, { user: pos(6, 'E'), client: pos(4, 'F'),
            global: pos(1, 'H') });
        s2.recv({ scope: 'user', site: 'S', event: 'e', data: 1, seq: 7 });
        assert.deepEqual(gw.positions().user, pos(7, 'E'));
        gw.close();
    });

test('positions given as an option: asked at the first connect, lost unless recovered',
    async () => {
        const { gw, next, events } = setup({ positions: { user: pos(3, 'E'),
            client: pos(1, 'E') } });
        const s = await next();
        s.open();
        assert.deepEqual(s.sent[0].recover, { user: pos(3, 'E'), client: pos(1, 'E') });
        assert.deepEqual(s.sent[0].events, [], 'no handler: nothing wanted');
        assert.equal(s.sent.length, 1);
        s.recv({ ready: { user: { seq: 3, epoch: 'E', recovered: true },
            client: { seq: 9, epoch: 'X', recovered: false }, global: pos(0, 'G') } });
        const r = events('ready')[0];
        assert.deepEqual([r.reconnect, r.recovered, r.lost],
            [false, { user: true, client: false }, ['client']]);
        gw.close();
    });

test('tokenInUrl and anonymous sessions put token, site and recover in the URL', async () => {
    const a = setup({ tokenInUrl: true, positions: { user: pos(3, 'E') } });
    const s = await a.next();
    const q = new URL(s.url).searchParams;
    assert.equal(q.get('token'), 'T');
    assert.deepEqual(JSON.parse(q.get('recover')), { user: pos(3, 'E') });
    s.open();
    assert.deepEqual(s.sent, [{ events: [] }], 'no token message');
    a.gw.close();

    const b = setup({ token: undefined, site: 'S 1', sockjsOptions: { sessionId: 8, x: 1 },
        transports: ['xhr-polling'] });
    const t = await b.next();
    assert.equal(t.url, 'http://gw.test/sockjs?site=S%201');
    assert.deepEqual(t.options, { sessionId: 8, x: 1, transports: ['xhr-polling'] });
    b.gw.close();
});

test('delays per close: backoff, drain, reset at ready', async () => {
    const rs = [0.5, 0.5, 0.8, 0.999, 0.5];
    const { gw, next, events } = setup({ minDelayMs: 100, maxDelayMs: 250, drainDelayMs: 40,
        random: () => rs.shift() });
    (await next()).drop(1002, 'Cannot connect to server');
    (await next()).drop(4001, 'Invalid token');
    assert.deepEqual(events('error')[0], { type: 'auth', code: 4001, reason: 'Invalid token' });
    (await next()).drop(4002, 'Token expired');
    const s = await next();
    s.open();
    s.recv({ ready: READY });
    s.drop(1001, 'Going away');
    const s5 = await next();
    s5.open();
    s5.recv({ ready: READY });
    s5.drop(4008, 'Slow consumer');
    await next();
    assert.deepEqual(events('disconnect').map((d) => [d.code, d.delayMs, d.attempt]), [
        [1002, 50, 1], [4001, 100, 2], [4002, 200, 3], /* 0.8 of min(250, 400) */
        [1001, 79, 0], /* 40 + 0.999 * 40, attempts untouched */
        [4008, 50, 1]]);
    gw.close();
});

test('presence: queued until ready, one at a time, errors and closes reject', async () => {
    const { gw, next } = setup();
    const p1 = gw.presence('user');
    const p2 = gw.presence('client');
    const p3 = gw.presence('nope');
    const s = await next();
    s.open();
    assert.equal(s.sent.filter((m) => m.presence).length, 0, 'asked before the ready');
    s.recv({ ready: READY });
    assert.deepEqual(s.sent.filter((m) => m.presence), [{ presence: 'user' }]);
    s.recv({ presence: { scope: 'user', sessions: 1, users: { u: 1 } } });
    assert.deepEqual(await p1, { scope: 'user', sessions: 1, users: { u: 1 } });
    assert.deepEqual(s.sent.filter((m) => m.presence).length, 2);
    s.recv({ error: 'presence queries too frequent' });
    await assert.rejects(p2, /presence queries too frequent/);
    s.recv({ error: 'presence scope must be client or user' });
    await assert.rejects(p3, /presence scope must be client or user/);
    const p4 = gw.presence('user');
    s.drop(1006, 'broken');
    await assert.rejects(p4, /disconnected/);
    const p5 = gw.presence('user');
    gw.close();
    await assert.rejects(p5, /closed/);
});

test('token expired: a fresh token on the same session; a failing token() is retried',
    async () => {
        let n = 0;
        const { gw, next, events } = setup({ token: async () => {
            n++;
            if (n === 3) {
                throw new Error('no token today');
            }
            return `T${n}`;
        } });
        const errors = [];
        gw.onState('error', (e) => errors.push(e));
        const s = await next();
        s.open();
        s.recv({ ready: READY });
        s.recv({ error: 'token expired' });
        for (let i = 0; i < 100 && !events('token').length; i++) {
            await tick();
        }
        assert.deepEqual(s.sent.pop(), { token: 'T2' });
        assert.equal(gw.state, 'ready');
        s.recv({ error: 'something else' });
        assert.deepEqual(errors[0], { type: 'server', message: 'something else' });
        s.drop(4002, 'Token expired');
        const s2 = await next();
        assert.equal(errors[1].type, 'token');
        assert.match(errors[1].error.message, /no token today/);
        s2.open();
        assert.deepEqual(s2.sent[0].token, 'T4');
        gw.close();
    });

test('no ready in time: closed and tried again', async () => {
    const { gw, next, events } = setup({ readyTimeoutMs: 20 });
    const s = await next();
    s.open();
    await next();
    assert.deepEqual(events('disconnect')[0].code, 4000);
    gw.close();
});

test('a throwing handler is reported, the others still run', async () => {
    const { gw, next, events } = setup();
    const got = [];
    gw.on('e', () => { throw new Error('handler bug'); });
    gw.on('e', (d) => got.push(d));
    const s = await next();
    s.open();
    s.recv({ ready: READY });
    s.recv({ scope: 'global', site: 'S', event: 'e', data: 42, seq: 10 });
    assert.deepEqual(got, [42]);
    assert.match(events('error')[0].error.message, /handler bug/);
    gw.close();
});
