/* What the Node and browser suites of web/sockjs-gateway.js share: HS256 tokens minted with
 * node:crypto (the claims of docs/PROTOCOL.md), publishes through the API, a private
 * redis-server, bounded waits. */
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const { spawn } = require('node:child_process');

const JWT_SECRET = 'library-test-secret-of-32-bytes-or-more'; // shorter ones are warned about
const API_KEY = 'library-test-key';
const REDIS_START_TIMEOUT_MS = 20000;

/* The gateway options every library test needs: its secret, the API on an ephemeral port. */
const GATEWAY_ARGS = ['--jwt-secret', JWT_SECRET, '--api-key', API_KEY,
    '--api-listen', '127.0.0.1:0'];

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/* An HS256 JWT for user `sub` of company `client` on `site`, valid `ttlS` seconds from now. */
function mintToken({ sub, client, site, ttlS = 3600, exp, secret = JWT_SECRET }) {
    const claims = { sub, client, site, exp: exp ?? Math.floor(Date.now() / 1000) + ttlS };
    const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' +
        b64url(JSON.stringify(claims));
    return head + '.' + b64url(crypto.createHmac('sha256', secret).update(head).digest());
}

/* POST /api/publish; resolves with the 202 answer, rejects on any other status. */
function publish(apiPort, body) {
    const data = JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: apiPort, method: 'POST',
            path: '/api/publish', timeout: 10000,
            headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json',
                'Content-Length': Buffer.byteLength(data) } }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { text += c; });
            res.on('end', () => (res.statusCode === 202 ? resolve(JSON.parse(text))
                : reject(new Error(`publish ${data}: ${res.statusCode} ${text}`))));
        });
        req.on('timeout', () => req.destroy(new Error('publish timed out')));
        req.on('error', reject);
        req.end(data);
    });
}

/* A loopback port that was free a moment ago. */
function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

/* A private redis-server on a free loopback port, ready once it logs so. */
async function startRedis() {
    for (let tries = 0; ; tries++) {
        const port = await freePort();
        const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
        const r = { child, port, log: '', exited: null };
        r.exited = new Promise((resolve) => child.on('exit', resolve));
        const ok = await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(
                `redis-server not ready within ${REDIS_START_TIMEOUT_MS} ms:\n${r.log}`)),
            REDIS_START_TIMEOUT_MS);
            child.on('error', (e) => { clearTimeout(timer); reject(e); });
            for (const s of [child.stdout, child.stderr]) {
                s.setEncoding('utf8');
                s.on('data', (c) => {
                    r.log += c;
                    if (/Ready to accept connections/.test(r.log)) {
                        clearTimeout(timer);
                        resolve(true);
                    }
                });
            }
            r.exited.then(() => { clearTimeout(timer); resolve(false); });
        });
        if (ok) {
            return r;
        }
        if (tries >= 3) {
            throw new Error(`redis-server exited at start:\n${r.log}`);
        }
    }
}

async function stopRedis(r) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGTERM');
        await within(10000, 'redis-server exit', r.exited).catch(() => r.child.kill('SIGKILL'));
    }
}

/* Rejects with `what` (a string, or a function giving one) unless `promise` settles within ms. */
function within(ms, what, promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ` +
            (typeof what === 'function' ? what() : what))), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/* A promise with its resolve at hand. */
function deferred() {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    return { promise, resolve };
}

module.exports = { JWT_SECRET, API_KEY, GATEWAY_ARGS, mintToken, publish, freePort, startRedis,
    stopRedis, within, deferred };
