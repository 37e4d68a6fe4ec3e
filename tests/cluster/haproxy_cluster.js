'use strict';
/*
 * Three gateway nodes behind HAProxy (deploy/haproxy/render.py's configuration), joined by one
 * redis-server, driven by 30 clients of web/sockjs-gateway.js over the stock sockjs-client
 * (10 each over websocket, xhr-streaming and xhr-polling), which reconnect by themselves:
 *   1. every client becomes ready through HAProxy; a publish through node 1's API reaches all;
 *      HAProxy's connections to the gateways come from several source addresses (`ss -tn`);
 *   2. SIGKILL of a node: only the clients whose session it held disconnect; HAProxy marks it
 *      down (stats socket); they reconnect to the survivors (HAProxy's log says which node got
 *      each session); a publish reaches all. The timeline kill → detection → all reconnected
 *      is printed;
 *   3. SIGTERM (drain) of another node: its clients get 1001 and move to the last node without
 *      any other close; HAProxy marks the node down through /readyz (check status L7STS);
 *      the node exits 0; a publish reaches all.
 * The stock client's Node XHR driver (not a browser's XHR) never reports a response cut off after
 * its head, as HAProxy passes on a killed node's stream: browserLikeXhr() makes Node's http
 * report it as an error, which the driver turns into the status-0 finish a browser gives.
 * Which node holds a session: HAProxy logs each request as its answer starts (--log-asap) with
 * the server line and the path, whose session segment the test generated (sessionId option).
 *
 * Run: GW_BINARY=build/sockjs-gateway node tests/cluster/haproxy_cluster.js
 * Needs haproxy (/usr/sbin), redis-server, ss (iproute2), tests/node/node_modules: all from
 * scripts/setup.sh --test. A missing one fails the test.
 */

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const { startGateway, stopGateway } = require('../js/gateway.js');
const { GATEWAY_ARGS, mintToken, publish, freePort, startRedis, stopRedis, within } =
    require('../js/fixtures.js');

const N_NODES = 3;
const LINES_PER_NODE = 2;
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const PER_TRANSPORT = 10;
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];
const DRAIN_MS = 2000;
const WAIT_MS = 20000;   /* bound of every wait */
const TOTAL_MS = 120000; /* the whole test */
const SITE = 'cluster-site';

const t0 = performance.now();
const stamp = () => `+${((performance.now() - t0) / 1000).toFixed(3)}s`;
const note = (text) => console.log(`${stamp()} ${text}`);

function findHaproxy() {
    for (const d of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
        const p = path.join(d, 'haproxy');
        try {
            fs.accessSync(p, fs.constants.X_OK);
            return p;
        } catch { /* next */ }
    }
    return null;
}

/* A response that ends without its end (the connection closed mid-body) fails its request, as
 * XMLHttpRequest's onerror does in a browser; sockjs-client's Node driver listens only there. */
function browserLikeXhr() {
    const request = http.request;
    http.request = function (...args) {
        const req = request.apply(this, args);
        req.on('response', (res) => res.on('close', () => {
            if (!res.complete) {
                req.emit('error', new Error('response cut off'));
            }
        }));
        return req;
    };
}

/* Polls `pred` (no event to await) every 20 ms until it is truthy; rejects after ms. */
async function until(what, pred, ms = WAIT_MS) {
    const end = performance.now() + ms;
    for (;;) {
        const v = await pred();
        if (v) {
            return v;
        }
        if (performance.now() > end) {
            throw new Error(`timed out after ${ms} ms: ${typeof what === 'function' ? what() : what}`);
        }
        await new Promise((r) => setTimeout(r, 20));
    }
}

/* HAProxy: its own process (stopped by PID), its log (stderr) kept and parsed. */
class Haproxy {
    constructor(binary, cfg, statsSocket) {
        this.statsSocket = statsSocket;
        this.log = '';
        this.sessionNode = new Map(); /* session id -> node number, from the log */
        this.child = spawn(binary, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
        this.exited = new Promise((resolve) => this.child.on('exit', resolve));
        let partial = '';
        this.child.stderr.setEncoding('utf8');
        this.child.stderr.on('data', (chunk) => {
            this.log += chunk;
            const lines = (partial + chunk).split('\n');
            partial = lines.pop();
            for (const l of lines) {
                /* ... gateways_session/g2_1 ... "POST /sockjs/123/<session>/xhr HTTP/1.1" */
                const m = / gateways_session\/g(\d+)_\d+ .*"[A-Z]+ \/sockjs\/[^/]+\/([^/]+)\/[a-z_]+/.exec(l);
                if (m) {
                    this.sessionNode.set(m[2], Number(m[1]));
                }
            }
        });
    }

    /* `show stat` as objects ({pxname, svname, status, check_status, ...}). */
    stats() {
        return new Promise((resolve, reject) => {
            const c = net.createConnection(this.statsSocket);
            let text = '';
            c.setEncoding('utf8');
            c.on('connect', () => c.write('show stat\n'));
            c.on('data', (d) => { text += d; });
            c.on('error', reject);
            c.on('end', () => {
                const lines = text.split('\n').filter((l) => l);
                const head = lines.shift().replace(/^# /, '').split(',');
                resolve(lines.map((l) => {
                    const f = l.split(',');
                    return Object.fromEntries(head.map((h, i) => [h, f[i]]));
                }));
            });
        });
    }

    /* The session backend's lines of node n. */
    async lines(n) {
        return (await this.stats()).filter((s) => s.pxname === 'gateways_session' &&
            s.svname.startsWith(`g${n}_`));
    }

    async stop() {
        if (this.child.exitCode === null && this.child.signalCode === null) {
            process.kill(this.child.pid, 'SIGTERM');
            await within(10000, 'haproxy exit', this.exited);
        }
    }
}

/* One library client: its sessions' ids (generated here), events, lifecycle. */
class Client {
    constructor(SockJS, SockJSGateway, url, transport, i) {
        this.transport = transport;
        this.name = `${transport}#${i}`;
        this.sub = `u-${transport}-${i}`;
        this.sids = [];
        this.events = [];       /* the numbers of the cluster.* events received */
        this.readies = [];      /* performance.now() of each ready */
        this.disconnects = [];  /* {at, code, reason} */
        this.gw = SockJSGateway.connect(url, {
            SockJS,
            transports: [transport],
            token: () => mintToken({ sub: this.sub, client: 'c-cluster', site: SITE }),
            sockjsOptions: {
                sessionId: () => {
                    const sid = crypto.randomBytes(12).toString('base64url');
                    this.sids.push(sid);
                    return sid;
                },
            },
        });
        this.gw.on('cluster.*', (data) => this.events.push(data.n));
        this.gw.onState('ready', () => this.readies.push(performance.now()));
        this.gw.onState('disconnect', (d) => {
            if (d.willRetry) {
                this.disconnects.push({ at: performance.now(), code: d.code, reason: d.reason });
            }
        });
    }

    get sid() { return this.sids[this.sids.length - 1]; }
    get ready() { return this.gw.state === 'ready'; }
    readySince(t) { return this.ready && this.readies.some((r) => r >= t); }
}

async function main() {
    const haproxyBin = findHaproxy();
    assert.ok(haproxyBin, 'haproxy is not installed (scripts/setup.sh --test installs it)');
    const binary = process.env.GW_BINARY;
    assert.ok(binary && fs.existsSync(binary), 'GW_BINARY must name the sockjs-gateway binary');
    const nodeModules = path.join(ROOT, 'tests', 'node', 'node_modules');
    assert.ok(fs.existsSync(path.join(nodeModules, 'sockjs-client')),
        'tests/node/node_modules is missing: scripts/setup.sh --test');
    browserLikeXhr();
    const SockJS = require(path.join(nodeModules, 'sockjs-client'));
    const SockJSGateway = require(path.join(ROOT, 'web', 'sockjs-gateway.js'));

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-cluster-'));
    const cleanups = [];
    const clients = [];
    let hap = null;
    try {
        const redis = await startRedis();
        cleanups.push(() => stopRedis(redis));
        const nodes = [];
        for (let i = 0; i < N_NODES; i++) {
            const gw = await startGateway(binary, { testApp: false, listen: '127.0.0.1:0,proxy',
                args: [...GATEWAY_ARGS, '--engine', `redis://127.0.0.1:${redis.port}`,
                    '--drain-ms', String(DRAIN_MS)] });
            nodes.push(gw);
            cleanups.push(async () => {
                if (gw.exit === null) {
                    await stopGateway(gw);
                }
            });
        }
        note(`gateways on ${nodes.map((g) => g.port).join(', ')} (,proxy); redis on ${redis.port}`);

        const port = await freePort();
        const cfg = path.join(dir, 'haproxy.cfg');
        const statsSocket = path.join(dir, 'stats.sock');
        const rendered = execFileSync('/usr/bin/python3', [
            path.join(ROOT, 'deploy', 'haproxy', 'render.py'),
            '--nodes', nodes.map((g) => `127.0.0.1:${g.port}`).join(','),
            '--bind', `127.0.0.1:${port}`, '--sources', SOURCES.join(','),
            '--lines-per-node', String(LINES_PER_NODE), '--check-inter', '500ms',
            '--stats-socket', statsSocket, '--log', 'stderr', '--log-asap',
            '--maxconn-per-server', '1000'], { encoding: 'utf8' });
        fs.writeFileSync(cfg, rendered);
        execFileSync(haproxyBin, ['-c', '-q', '-f', cfg]);
        hap = new Haproxy(haproxyBin, cfg, statsSocket);
        cleanups.push(() => hap.stop());
        const nodeOfLines = async (n) => (await hap.lines(n)).map((s) => s.status);
        await until(() => `haproxy sees every node up; log:\n${hap.log}`, async () => {
            try {
                const st = (await hap.stats()).filter((s) => s.pxname === 'gateways_session' &&
                    s.svname !== 'BACKEND');
                return st.length === N_NODES * LINES_PER_NODE &&
                    st.every((s) => s.status === 'UP' && s.check_status === 'L7OK');
            } catch {
                return false; /* not listening yet */
            }
        });
        note(`haproxy (pid ${hap.child.pid}) on ${port}: every node up (GET /readyz)`);

        /* ---- 1. every transport through HAProxy --------------------------------------- */
        const url = `http://127.0.0.1:${port}/sockjs`;
        for (const t of TRANSPORTS) {
            for (let i = 0; i < PER_TRANSPORT; i++) {
                clients.push(new Client(SockJS, SockJSGateway, url, t, i));
            }
        }
        cleanups.unshift(() => clients.forEach((c) => c.gw.close()));
        const notReady = () => clients.filter((c) => !c.ready).map((c) => c.name).join(' ');
        await until(() => `clients ready: missing ${notReady()}`, () => clients.every((c) => c.ready));
        await until('HAProxy logged every session', () =>
            clients.every((c) => hap.sessionNode.has(c.sid)));
        const perNode = (n) => clients.filter((c) => hap.sessionNode.get(c.sid) === n);
        const spread = () => [1, 2, 3].map((n) => `node ${n}: ${perNode(n).length} ` +
            `(${TRANSPORTS.map((t) => perNode(n).filter((c) => c.transport === t).length).join('/')})`)
            .join(', ');
        note(`${clients.length} clients ready; sessions (ws/streaming/polling) ${spread()}`);

        let n = 0;
        const publishAndCheck = async (node, what) => {
            n++;
            const seq = n;
            await publish(node.apiPort, { scope: 'global', site: SITE, event: 'cluster.msg',
                data: { n: seq } });
            await until(() => `${what}: publish ${seq} missing at ` +
                clients.filter((c) => !c.events.includes(seq)).map((c) => c.name).join(' '),
            () => clients.every((c) => c.events.includes(seq)));
            note(`${what}: publish ${seq} through node ${nodes.indexOf(node) + 1}'s API ` +
                `reached all ${clients.length} clients`);
        };
        await publishAndCheck(nodes[0], 'all up');

        /* Which source addresses HAProxy's connections to the gateways come from. */
        const gwPorts = new Set(nodes.map((g) => String(g.port)));
        const ss = execFileSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' });
        const sources = new Set();
        for (const line of ss.split('\n')) {
            const f = line.trim().split(/\s+/);
            if (f.length < 4) {
                continue;
            }
            const [local, peer] = f.slice(-2);
            const peerPort = peer.slice(peer.lastIndexOf(':') + 1);
            if (gwPorts.has(peerPort) && peer.startsWith('127.0.0.1:')) {
                sources.add(local.slice(0, local.lastIndexOf(':')));
            }
        }
        note(`ss -tn: connections to the gateways come from ${[...sources].sort().join(', ')}`);
        assert.ok(sources.size >= 3, `several source addresses expected, got ${[...sources]}`);
        for (const s of sources) {
            assert.ok(SOURCES.includes(s), `a connection to a gateway from ${s}`);
        }

        /* ---- 2. SIGKILL: only its sessions move --------------------------------------- */
        const kn = perNode(2).length >= perNode(3).length ? 2 : 3; /* node 1 publishes */
        const dn = 5 - kn;
        const killed = perNode(kn);
        assert.ok(killed.length > 0 && perNode(dn).length > 0, `sessions spread: ${spread()}`);
        const others = clients.filter((c) => !killed.includes(c));
        const tKill = performance.now();
        process.kill(nodes[kn - 1].child.pid, 'SIGKILL');
        note(`kill: node ${kn} (SIGKILL) holding ${killed.length} sessions`);
        await until(`haproxy marks node ${kn} down`, async () =>
            (await nodeOfLines(kn)).every((s) => s.startsWith('DOWN')), WAIT_MS);
        const tDown = performance.now();
        note(`detection: haproxy marks node ${kn} down ` +
            `(${(await hap.lines(kn)).map((s) => `${s.svname} ${s.check_status}`).join(', ')})`);
        await until(() => 'killed node\'s clients reconnected: missing ' +
            killed.filter((c) => !c.readySince(tKill)).map((c) => c.name).join(' '),
        () => killed.every((c) => c.readySince(tKill)));
        const tBack = performance.now();
        const firstClose = Math.min(...killed.map((c) => c.disconnects.find((d) => d.at >= tKill)?.at ?? Infinity));
        note(`reconnected: all ${killed.length} (first close seen after ` +
            `${(firstClose - tKill).toFixed(0)} ms)`);
        await until('HAProxy logged the new sessions', () =>
            clients.every((c) => hap.sessionNode.has(c.sid)));
        for (const c of killed) {
            assert.ok(c.disconnects.some((d) => d.at >= tKill), `${c.name} saw no close`);
            assert.notEqual(hap.sessionNode.get(c.sid), kn, `${c.name} reconnected to node ${kn}`);
        }
        await publishAndCheck(nodes[0], 'after the kill');
        for (const c of others) {
            assert.deepEqual(c.disconnects.filter((d) => d.at >= tKill), [],
                `${c.name} (node ${hap.sessionNode.get(c.sid)}) was disconnected by the kill`);
        }
        console.log(`TIMELINE kill: 0 ms; detection (node ${kn} DOWN in haproxy): ` +
            `${(tDown - tKill).toFixed(0)} ms; all ${killed.length} sessions reconnected: ` +
            `${(tBack - tKill).toFixed(0)} ms`);
        note(`sessions now ${spread()}`);

        /* ---- 3. drain: its clients move without a failure ------------------------------ */
        const drained = perNode(dn);
        const tTerm = performance.now();
        nodes[dn - 1].child.kill('SIGTERM');
        note(`drain: node ${dn} (SIGTERM, --drain-ms ${DRAIN_MS}) holding ${drained.length} sessions`);
        const down = await until(`haproxy marks node ${dn} down`, async () => {
            const l = await hap.lines(dn);
            return l.every((s) => s.status.startsWith('DOWN')) && l;
        });
        const tDrainDown = performance.now();
        note(`detection: haproxy marks node ${dn} down ` +
            `(${down.map((s) => `${s.svname} ${s.check_status} ${s.last_chk}`).join(', ')})`);
        for (const s of down) {
            assert.equal(s.check_status, 'L7STS', `node ${dn} down by /readyz, not ${s.check_status}`);
        }
        await until(() => 'drained clients reconnected: missing ' +
            drained.filter((c) => !c.readySince(tTerm)).map((c) => c.name).join(' '),
        () => drained.every((c) => c.readySince(tTerm)));
        const tDrained = performance.now();
        const st = await within(WAIT_MS, 'drained node exit', nodes[dn - 1].exited);
        assert.deepEqual(st, { code: 0, signal: null }, 'drained node exit status');
        await until('HAProxy logged the new sessions', () =>
            clients.every((c) => hap.sessionNode.has(c.sid)));
        await publishAndCheck(nodes[0], 'after the drain');
        for (const c of clients) {
            const closes = c.disconnects.filter((d) => d.at >= tTerm);
            if (drained.includes(c)) {
                assert.deepEqual(closes.map((d) => d.code), [1001], `${c.name}: one 1001, no failure`);
                assert.equal(hap.sessionNode.get(c.sid), 1, `${c.name} moved to node 1`);
            } else {
                assert.deepEqual(closes, [], `${c.name} was disconnected by the drain`);
            }
        }
        console.log(`TIMELINE drain: SIGTERM 0 ms; node ${dn} DOWN in haproxy (/readyz 503): ` +
            `${(tDrainDown - tTerm).toFixed(0)} ms; all ${drained.length} sessions moved: ` +
            `${(tDrained - tTerm).toFixed(0)} ms; node exited 0`);
        note('ok');
    } catch (e) {
        /* Each client: state, sessions (@node), closes (ms since the start, code, reason). */
        for (const c of clients) {
            console.error(c.name, c.gw.state,
                c.sids.map((x) => `${x}@${hap?.sessionNode.get(x)}`).join(' '),
                JSON.stringify(c.disconnects.map((d) => [Math.round(d.at - t0), d.code, d.reason])));
        }
        console.error(`haproxy log tail:\n${hap?.log.slice(-6000)}`);
        throw e;
    } finally {
        for (const c of cleanups.reverse()) {
            try {
                await c();
            } catch (e) {
                console.error(`cleanup: ${e.message}`);
                process.exitCode = 1;
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const watchdog = setTimeout(() => {
    console.error(`cluster test: not done within ${TOTAL_MS} ms`);
    process.exit(1);
}, TOTAL_MS);
main().then(() => clearTimeout(watchdog), (e) => {
    console.error(e.stack || e);
    process.exit(1);
});
