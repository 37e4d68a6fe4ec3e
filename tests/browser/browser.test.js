'use strict';
/*
 * Real-browser tests: the sockjs-client 1.6.1 browser build that the gateway itself serves at
 * /static/sockjs.min.js, running in Debian's headless Chromium (driven by playwright-core), against
 * the gateway's --test-app prefixes. Every browser transport is forced in turn, once from a page
 * served by the gateway (same origin) and once from a page of another origin (a small HTTP server
 * of this test on another port), so the CORS, iframe and JSONP paths run as a real browser runs
 * them.
 *
 * Per case (transport x origin), in a fresh browser context and page:
 *   1. /echo opens with exactly the forced transport; 200 messages with unicode (controls,
 *      U+2028/U+2029, the ranges SockJS escapes, astral characters, "</script>") come back
 *      exactly and in order; the client closes.
 *   2. /close opens with the forced transport and the client sees the server's close,
 *      code 3000 "Go away!".
 *   3. Reconnect: a new SockJS to /echo after that close opens (forced transport) and echoes.
 *
 * Run: GW_BINARY=build/sockjs-gateway node --test tests/browser/
 * (BROWSER_TEST_VERBOSE=1 also prints every passing case's browser console and failed requests.)
 * Needs tests/browser/node_modules (playwright-core) and /usr/bin/chromium: scripts/setup.sh --test.
 * Playwright's own browser download (npx playwright install) is never used.
 */

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { startGateway, stopGateway } = require('../js/gateway.js');
const { within } = require('../js/fixtures.js');

const PLAYWRIGHT_CORE_VERSION = '1.64.1';
const CHROMIUM = '/usr/bin/chromium';
const SOCKJS_CLIENT_VERSION = '1.6.1';

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource',
    'iframe-eventsource', 'iframe-htmlfile', 'iframe-xhr-polling', 'jsonp-polling'];
const ORIGINS = ['same-origin', 'cross-origin'];

/* Bounds for every wait; generous enough for an ASan build of the gateway. */
const BROWSER_START_TIMEOUT_MS = 20000;
const STEP_TIMEOUT_MS = 20000;
const CASE_TIMEOUT_MS = 90000;
const ECHO_COUNT = 200;

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'];

/* Missing prerequisites are failures, not skips: a skipped browser test proves nothing. */
function setupProblem() {
    const how = 'run scripts/setup.sh --test (it installs Debian\'s chromium and runs npm ci in ' +
        'tests/browser)';
    const modDir = path.join(__dirname, 'node_modules', 'playwright-core');
    if (!fs.existsSync(path.join(modDir, 'package.json'))) {
        return `${modDir} is missing: ${how}`;
    }
    const version = require(path.join(modDir, 'package.json')).version;
    if (version !== PLAYWRIGHT_CORE_VERSION) {
        return `playwright-core ${version} is installed, the tests pin ` +
            `${PLAYWRIGHT_CORE_VERSION}: ${how}, or: cd tests/browser && npm ci`;
    }
    if (!fs.existsSync(CHROMIUM)) {
        return `${CHROMIUM} is missing: ${how}`;
    }
    if (!process.env.GW_BINARY) {
        return 'GW_BINARY is not set: point it at the sockjs-gateway binary';
    }
    if (!fs.existsSync(process.env.GW_BINARY)) {
        return `GW_BINARY=${process.env.GW_BINARY} does not exist: build the gateway first`;
    }
    return null;
}


/* The other origin: a blank page that loads the client from the gateway. */
function startOtherOrigin(gwPort) {
    const page = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>other origin</title>' +
        `<script src="http://127.0.0.1:${gwPort}/static/sockjs.min.js"></script>` +
        '</head><body><p>cross-origin test page</p></body></html>\n';
    const server = http.createServer((req, res) => {
        if (req.method === 'GET' && (req.url === '/' || req.url.startsWith('/?'))) {
            res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8',
                'Cache-Control': 'no-store' });
            res.end(page);
        } else {
            res.writeHead(404, { 'Content-Type': 'text/plain' });
            res.end('not found\n');
        }
    });
    return new Promise((resolve, reject) => {
        server.on('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

/* Readable code points for assertion messages. */
function codepoints(s, limit = 24) {
    const cps = Array.from(s).slice(0, limit).map((c) => 'U+' +
        c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0'));
    return cps.join(' ') + (Array.from(s).length > limit ? ' ...' : '');
}

/*
 * Runs in the page (serialised by Playwright): a small harness around window.SockJS that records
 * every event, so each step can wait for "open", "n messages" or "close" with its own bound.
 */
function installHarness() {
    const conns = {};
    let nextId = 1;
    function waitFor(c, pred, ms) {
        return new Promise((resolve) => {
            const started = Date.now();
            (function poll() {
                if (pred()) {
                    resolve(true);
                } else if (Date.now() - started > ms) {
                    resolve(false);
                } else {
                    setTimeout(poll, 10);
                }
            }());
        });
    }
    window.__sjt = {
        version: window.SockJS && window.SockJS.version,
        /* Opens url with exactly one allowed transport; resolves on open or on close. */
        open(url, transport, ms) {
            const id = nextId++;
            const c = { msgs: [], close: null, openTransport: null, opened: false };
            conns[id] = c;
            try {
                c.sock = new window.SockJS(url, null, { transports: [transport], timeout: ms });
            } catch (e) {
                return Promise.resolve({ id, error: `new SockJS threw: ${e && e.stack || e}` });
            }
            c.sock.onopen = () => {
                c.opened = true;
                c.openTransport = c.sock.transport;
            };
            c.sock.onmessage = (e) => { c.msgs.push(e.data); };
            c.sock.onclose = (e) => {
                c.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
            };
            return waitFor(c, () => c.opened || c.close, ms).then(() => ({
                id, opened: c.opened, openTransport: c.openTransport,
                transport: c.sock.transport, readyState: c.sock.readyState, close: c.close,
            }));
        },
        /* Sends every message, waits for as many echoes (or a close, or ms). */
        echo(id, messages, ms) {
            const c = conns[id];
            c.msgs = [];
            for (const m of messages) {
                c.sock.send(m);
            }
            return waitFor(c, () => c.msgs.length >= messages.length || c.close, ms).then(() => ({
                got: c.msgs.slice(), transport: c.sock.transport, close: c.close,
            }));
        },
        /* Waits for the close event (after asking for it when `initiate`). */
        close(id, initiate, ms) {
            const c = conns[id];
            if (initiate && !c.close) {
                c.sock.close();
            }
            return waitFor(c, () => c.close, ms).then(() => ({
                close: c.close, msgsAfter: c.msgs.length,
            }));
        },
    };
    return window.__sjt.version;
}

/* Unicode samples: controls, JSON/JS/HTML specials, SockJS-escaped ranges, astral characters. */
const SAMPLES = [
    'plain ascii', '\u0000', '\u0001\u0002\u001f', '\t\n\r', '\u007f\u0080\u009f', '"', '\\',
    '/', '</script>', '<!--<script>', ']]>', '%', '%25', '%E2%80%A8', '&amp;', '\u00e9\u00ff',
    '\u0300', '\u07ff\u0800', '\u200b\u200c\u200d\u200e\u200f', '\u2028', '\u2029',
    'a\u2028b\u2029c', '\u202f\u2060\u206f', '\ud7ff\ue000', '\ufeff', '\ufff0\ufffd\ufffe\uffff',
    '\u0105\u0119\u015b\u0107\u017c', '\u65e5\u672c\u8a9e', '\u05e2\u05d1\u05e8\u05d9\u05ea',
    '\u{1F600}', '\u{1D11E}', '\u{10000}', '\u{10FFFF}', '\u{1F469}\u200d\u{1F469}\u200d\u{1F467}',
    'x\u0000y\u2028z\u{1F600}w\uffff',
];

function echoMessages(n) {
    const out = [];
    for (let i = 0; i < n; i++) {
        out.push(`#${i} ${SAMPLES[i % SAMPLES.length]} \u{1F600}${i}\u2028`);
    }
    return out;
}

const problem = setupProblem();
const results = [];

if (problem) {
    test('browser test prerequisites', () => {
        assert.fail(problem);
    });
} else {
    const { chromium } = require('playwright-core');
    let gw;
    let other;
    let browser;
    let gwBase;
    let otherBase;

    before(async () => {
        gw = await startGateway(process.env.GW_BINARY);
        gwBase = `http://127.0.0.1:${gw.port}`;
        other = await startOtherOrigin(gw.port);
        otherBase = `http://127.0.0.1:${other.address().port}`;
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_ARGS,
            timeout: BROWSER_START_TIMEOUT_MS,
        });
    });

    after(async () => {
        if (browser) {
            await browser.close();
        }
        if (other) {
            await new Promise((resolve) => other.close(resolve));
        }
        if (results.length) {
            const lines = ['', 'transport            origin        result  ms'];
            for (const r of results) {
                lines.push(`${r.transport.padEnd(20)} ${r.origin.padEnd(13)} ` +
                    `${r.ok ? 'pass' : 'FAIL'}    ${r.ms}` + (r.ok ? '' : `  ${r.why}`));
            }
            console.log(lines.join('\n'));
        }
        if (gw) {
            await stopGateway(gw);
        }
    });

    describe(`sockjs-client ${SOCKJS_CLIENT_VERSION} in Chromium`, () => {
        for (const transport of TRANSPORTS) {
            for (const origin of ORIGINS) {
                test(`${transport} x ${origin}`, { timeout: CASE_TIMEOUT_MS }, async () => {
                    await runCase(transport, origin);
                });
            }
        }
    });

    /* Chromium offers permessage-deflate on every websocket: with --ws-deflate (here through the
     * environment) the raw endpoint must negotiate it and echo a compressed message intact. */
    test('permessage-deflate with Chromium (--ws-deflate)', { timeout: CASE_TIMEOUT_MS }, async () => {
        process.env.SOCKJS_GATEWAY_WS_DEFLATE = '1';
        const dgw = await startGateway(process.env.GW_BINARY)
            .finally(() => delete process.env.SOCKJS_GATEWAY_WS_DEFLATE);
        const context = await browser.newContext();
        try {
            const page = await context.newPage();
            const msg = 'compress me \u{1F600} '.repeat(200);
            const r = await within(STEP_TIMEOUT_MS, 'deflate echo', page.evaluate(([url, m]) =>
                new Promise((resolve, reject) => {
                    const ws = new WebSocket(url);
                    ws.onerror = () => reject(new Error('websocket error'));
                    ws.onopen = () => ws.send(m);
                    ws.onmessage = (e) => { resolve({ ext: ws.extensions, same: e.data === m }); ws.close(); };
                }), [`ws://127.0.0.1:${dgw.port}/echo/websocket`, msg]));
            assert.equal(r.ext, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
            assert.ok(r.same, 'the echo differs from the message sent');
        } finally {
            await context.close().catch(() => {});
            await stopGateway(dgw);
        }
    });

    async function runCase(transport, origin) {
        const started = Date.now();
        const logOffset = gw.log.length;
        const events = [];
        const stamp = () => `+${Date.now() - started}ms`;
        const context = await browser.newContext();
        const page = await context.newPage();
        page.on('console', (m) => {
            const loc = m.location();
            events.push(`${stamp()} console.${m.type()}: ${m.text()}` +
                (loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''));
        });
        page.on('pageerror', (e) => events.push(`${stamp()} pageerror: ${e.stack || e}`));
        page.on('requestfailed', (r) => events.push(`${stamp()} requestfailed: ${r.method()} ` +
            `${r.url()} ${r.failure() && r.failure().errorText}`));
        page.on('response', (r) => {
            if (r.status() >= 400) {
                events.push(`${stamp()} HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
            }
        });
        let step = 'load the page';
        try {
            /* The demo page as a same-origin host page; connect=0: it connects on load
             * otherwise, and only the harness's sockets are wanted here. */
            const pageUrl = origin === 'same-origin' ? `${gwBase}/demo/?connect=0` :
                `${otherBase}/`;
            const resp = await page.goto(pageUrl, { timeout: STEP_TIMEOUT_MS, waitUntil: 'load' });
            assert.equal(resp.status(), 200, `GET ${pageUrl}`);
            step = 'install the harness';
            const version = await page.evaluate(installHarness);
            assert.equal(version, SOCKJS_CLIENT_VERSION,
                'SockJS.version of /static/sockjs.min.js');

            const bound = (what, p) => within(STEP_TIMEOUT_MS + 5000, what, p);
            const open = async (prefix) => {
                step = `open ${prefix}`;
                const r = await bound(step, page.evaluate(([u, t, ms]) => window.__sjt.open(u, t, ms),
                    [gwBase + prefix, transport, STEP_TIMEOUT_MS]));
                assert.ok(!r.error, r.error);
                assert.ok(r.opened, r.close
                    ? `${prefix} closed before open: ${r.close.code} ${r.close.reason}`
                    : `${prefix} did not open within ${STEP_TIMEOUT_MS} ms`);
                assert.equal(r.openTransport, transport, `sock.transport at open on ${prefix}`);
                return r;
            };
            const echo = async (id, messages, what) => {
                step = what;
                const r = await bound(step, page.evaluate(([i, m, ms]) => window.__sjt.echo(i, m, ms),
                    [id, messages, STEP_TIMEOUT_MS]));
                for (let i = 0; i < Math.min(r.got.length, messages.length); i++) {
                    if (r.got[i] !== messages[i]) {
                        assert.fail(`${what}: echo #${i} differs: got [${codepoints(r.got[i])}] ` +
                            `expected [${codepoints(messages[i])}]`);
                    }
                }
                assert.equal(r.got.length, messages.length, `${what}: number of echoes` +
                    (r.close ? ` (closed: ${r.close.code} ${r.close.reason})` : ' (timed out)'));
                assert.equal(r.transport, transport, `${what}: sock.transport after the echoes`);
            };
            const clientClose = async (id, what) => {
                step = what;
                const r = await bound(step, page.evaluate(([i, ms]) => window.__sjt.close(i, true, ms),
                    [id, STEP_TIMEOUT_MS]));
                assert.ok(r.close, `${what}: no close event`);
                assert.equal(r.close.code, 1000, `${what}: close code`);
            };

            /* 1: echo */
            const a = await open('/echo');
            await echo(a.id, echoMessages(ECHO_COUNT), `echo ${ECHO_COUNT} messages on /echo`);
            await clientClose(a.id, 'client close of /echo');

            /* 2: server close */
            const b = await open('/close');
            step = 'server close on /close';
            const c = await bound(step, page.evaluate(([i, ms]) => window.__sjt.close(i, false, ms),
                [b.id, STEP_TIMEOUT_MS]));
            assert.ok(c.close, 'no close event from /close');
            assert.equal(c.close.code, 3000, '/close: close code');
            assert.equal(c.close.reason, 'Go away!', '/close: close reason');
            assert.equal(c.close.wasClean, true, '/close: wasClean');
            assert.equal(c.msgsAfter, 0, '/close: messages received');

            /* 3: reconnect after the server close */
            const d = await open('/echo');
            await echo(d.id, ['again', '\u2028\u{1F600}', 'x'.repeat(1000)], 'echo after reconnect');
            await clientClose(d.id, 'client close after reconnect');

            step = 'page errors';
            const errors = events.filter((e) => / pageerror: /.test(e));
            assert.deepEqual(errors, [], 'uncaught errors in the page');
            results.push({ transport, origin, ok: true, ms: Date.now() - started });
            if (process.env.BROWSER_TEST_VERBOSE) {
                console.log(`--- ${transport} x ${origin}: browser events ---\n` +
                    (events.join('\n') || '(none)'));
            }
        } catch (err) {
            const why = `${transport} x ${origin}: failed at step "${step}": ${err.message}`;
            results.push({ transport, origin, ok: false, ms: Date.now() - started,
                why: `${step}: ${err.message.split('\n')[0]}` });
            const gwLog = gw.log.slice(logOffset).split('\n').slice(-40).join('\n');
            throw new Error(`${why}\n--- browser events (console, errors, failed requests) ---\n` +
                `${events.join('\n') || '(none)'}\n--- gateway log during the case (tail) ---\n` +
                `${gwLog || '(empty)'}`);
        } finally {
            await context.close().catch(() => {});
        }
    }
}
