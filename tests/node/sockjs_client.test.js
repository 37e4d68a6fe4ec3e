'use strict';
/*
 * Real-client tests: the stock sockjs-client 1.6.1 from npm (unmodified) against the gateway's
 * --test-app prefixes, once per forced transport. The client is the one browsers load, so these
 * tests catch protocol details that our own integration tests could get wrong in the same way
 * as the server.
 *
 * Run: GW_BINARY=build/sockjs-gateway node --test tests/node/
 * (needs tests/node/node_modules: run `scripts/setup.sh --test`, or `npm ci` in tests/node).
 */

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { startGateway, stopGateway } = require('../js/gateway.js');
const { within } = require('../js/fixtures.js');

const SOCKJS_CLIENT_VERSION = '1.6.1';
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];

/* Bounds for every wait. They are generous because CTest may run the gateway under ASan. */
const OPEN_TIMEOUT_MS = 20000;
const TEST_TIMEOUT_MS = 120000;

/*
 * Missing prerequisites are failures, not skips: a skipped real-client test would let the suite
 * pass without ever having run the real client.
 */
function setupProblem() {
    const modDir = path.join(__dirname, 'node_modules', 'sockjs-client');
    if (!fs.existsSync(path.join(modDir, 'package.json'))) {
        return `${modDir} is missing: run the setup script first ` +
            '(scripts/setup.sh --test, or: cd tests/node && npm ci)';
    }
    const version = require(path.join(modDir, 'package.json')).version;
    if (version !== SOCKJS_CLIENT_VERSION) {
        return `sockjs-client ${version} is installed, the tests pin ${SOCKJS_CLIENT_VERSION}: ` +
            'reinstall with: cd tests/node && npm ci';
    }
    if (!process.env.GW_BINARY) {
        return 'GW_BINARY is not set: point it at the sockjs-gateway binary';
    }
    if (!fs.existsSync(process.env.GW_BINARY)) {
        return `GW_BINARY=${process.env.GW_BINARY} does not exist: build the gateway first`;
    }
    return null;
}

/*
 * A SockJS connection that records every event, so that a test can wait for "the next n
 * messages" or "the close event" without racing the client's callbacks.
 */
class Client {
    constructor(SockJS, url, transport) {
        this.messages = [];
        this.waiters = [];
        this.closeEvent = null;
        this.openTransport = null;
        this.sock = new SockJS(url, null, { transports: [transport], timeout: OPEN_TIMEOUT_MS });
        this.opened = new Promise((resolve, reject) => {
            /*
             * The client clears sock.transport on close, and /close sends `o` and `c` in one
             * read on streaming transports, so the name is recorded when open fires.
             */
            this.sock.onopen = () => {
                this.openTransport = this.sock.transport;
                resolve();
            };
            this.closed = new Promise((resolveClose) => {
                this.sock.onclose = (e) => {
                    this.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean };
                    reject(new Error(`closed before open: ${e.code} ${e.reason}`));
                    resolveClose(this.closeEvent);
                    this.wake();
                };
            });
        });
        /* A close after open must not surface as an unhandled rejection. */
        this.opened.catch(() => {});
        this.sock.onmessage = (e) => {
            this.messages.push(e.data);
            this.wake();
        };
    }

    wake() {
        for (const w of this.waiters.splice(0)) {
            w();
        }
    }

    /* Resolves with exactly the next n messages; fails if the connection closes first. */
    take(n, ms, what) {
        return within(ms, () => `${what} (have ${this.messages.length} of ${n} messages)`,
            new Promise((resolve, reject) => {
                const check = () => {
                    if (this.messages.length >= n) {
                        resolve(this.messages.splice(0, n));
                    } else if (this.closeEvent) {
                        reject(new Error(`connection closed (${this.closeEvent.code} ` +
                            `${this.closeEvent.reason}) after ${this.messages.length} of ${n} ` +
                            `messages: ${what}`));
                    } else {
                        this.waiters.push(check);
                    }
                };
                check();
            }));
    }

    async close() {
        if (!this.closeEvent) {
            this.sock.close();
            await within(OPEN_TIMEOUT_MS, 'client close', this.closed);
        }
    }
}

/* Readable code points for assertion messages: control and special characters are invisible. */
function codepoints(s, limit = 64) {
    const cps = Array.from(s).slice(0, limit).map((c) => 'U+' +
        c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0'));
    return cps.join(' ') + (Array.from(s).length > limit ? ' ...' : '');
}

/* Compares long strings without printing megabytes: length and first difference. */
function assertSameString(actual, expected, what) {
    if (actual === expected) {
        return;
    }
    let i = 0;
    while (i < actual.length && i < expected.length && actual[i] === expected[i]) {
        i++;
    }
    assert.fail(`${what}: got ${actual.length} UTF-16 units, expected ${expected.length}; ` +
        `first difference at index ${i}: got [${codepoints(actual.slice(i, i + 8))}] ` +
        `expected [${codepoints(expected.slice(i, i + 8))}]`);
}

/*
 * Characters that JSON encoders, UTF-8 codecs and the SockJS escaping rules are most likely to
 * get wrong: NUL and the other controls, the JavaScript line terminators U+2028/U+2029, the
 * ranges SockJS escapes (U+200C-U+200F, U+2028-U+202F, U+2060-U+206F, U+FFF0-U+FFFF),
 * the BOM, the edges around the surrogate block, and astral characters (sent by the client as
 * surrogate-pair escapes, received as raw UTF-8 or escapes).
 */
function unicodeSamples() {
    const samples = [];
    for (let c = 0; c < 0x20; c++) {
        samples.push(String.fromCharCode(c));
    }
    samples.push('\u007f', '\u0080', '\u009f', '\u00a0', '\u00ff', '\u0100', '\u0300', '\u07ff',
        '\u0800', '\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2028', '\u2029', '\u202f',
        '\u2060', '\u206f', '\ud7ff', '\ue000', '\ufeff', '\ufff0', '\ufffd', '\ufffe', '\uffff',
        '"', '\\', '/', '</script>', '\\u0041', '%', '%25', 'ąęśćż', '日本語', 'עברית', '😀',
        '𝄞', '\u{10000}', '\u{10ffff}', '👩‍👩‍👧', 'a\u0000b\u2028c😀d\uffffe');
    samples.push(samples.join(''));
    return samples;
}

/* Every BMP code point except the surrogates (lone surrogates are not valid UTF-8 text). */
function allBmp() {
    const parts = [];
    for (let c = 0; c < 0x10000; c++) {
        if (c < 0xd800 || c > 0xdfff) {
            parts.push(String.fromCharCode(c));
        }
    }
    return parts.join('');
}

/* 1,000,000 characters with a period that does not divide any likely buffer size. */
function bigMessage() {
    const pattern = 'The quick brown fox jumps over the lazy dog 0123456789 ~!@#$^&*()_+=-{}[];:,.<>?|';
    return pattern.repeat(Math.ceil(1000000 / pattern.length)).slice(0, 1000000);
}

const problem = setupProblem();

if (problem) {
    test('sockjs-client test prerequisites', () => {
        assert.fail(problem);
    });
} else {
    const SockJS = require('sockjs-client');
    let gw;
    let base;

    before(async () => {
        gw = await startGateway(process.env.GW_BINARY);
        base = `http://127.0.0.1:${gw.port}`;
    });

    after(async () => {
        if (gw) {
            await stopGateway(gw);
        }
    });

    for (const transport of TRANSPORTS) {
        describe(`sockjs-client ${SOCKJS_CLIENT_VERSION} over ${transport}`, () => {
            const opts = { timeout: TEST_TIMEOUT_MS };

            async function open(prefix) {
                const c = new Client(SockJS, base + prefix, transport);
                await within(OPEN_TIMEOUT_MS, `open ${prefix} over ${transport}`, c.opened);
                return c;
            }

            test('uses the forced transport', opts, async () => {
                const c = await open('/echo');
                try {
                    assert.equal(c.openTransport, transport);
                    assert.equal(c.sock.transport, transport);
                    assert.equal(c.sock.readyState, SockJS.OPEN);
                } finally {
                    await c.close();
                }
            });

            test('echoes 1,000 messages in order', opts, async () => {
                const c = await open('/echo');
                try {
                    const sent = [];
                    for (let i = 0; i < 1000; i++) {
                        sent.push(`message ${i} ` + 'x'.repeat(i % 50));
                        c.sock.send(sent[i]);
                    }
                    const got = await c.take(1000, 60000, '1,000 echoes');
                    for (let i = 0; i < 1000; i++) {
                        assert.equal(got[i], sent[i], `echo #${i} out of order or altered`);
                    }
                    assert.equal(c.sock.transport, transport);
                } finally {
                    await c.close();
                }
            });

            test('round-trips unicode exactly', opts, async () => {
                const c = await open('/echo');
                try {
                    const samples = unicodeSamples();
                    samples.push(allBmp());
                    for (const s of samples) {
                        c.sock.send(s);
                    }
                    const got = await c.take(samples.length, 60000, 'unicode echoes');
                    for (let i = 0; i < samples.length; i++) {
                        assertSameString(got[i], samples[i],
                            `unicode sample #${i} [${codepoints(samples[i], 8)}]`);
                    }
                } finally {
                    await c.close();
                }
            });

            test('round-trips a 1 MB message', opts, async () => {
                const c = await open('/echo');
                try {
                    const big = bigMessage();
                    assert.equal(big.length, 1000000);
                    c.sock.send(big);
                    /* A small message after it proves the session survived the big one. */
                    c.sock.send('after');
                    const [echo, after2] = await c.take(2, 60000, '1 MB echo');
                    assertSameString(echo, big, '1 MB echo');
                    assert.equal(after2, 'after');
                } finally {
                    await c.close();
                }
            });

            test('sees a server-initiated close', opts, async () => {
                const c = new Client(SockJS, base + '/close', transport);
                await within(OPEN_TIMEOUT_MS, `open /close over ${transport}`, c.opened);
                assert.equal(c.openTransport, transport);
                const ev = await within(OPEN_TIMEOUT_MS, 'close event from /close', c.closed);
                assert.equal(ev.code, 3000);
                assert.equal(ev.reason, 'Go away!');
                assert.equal(ev.wasClean, true);
            });
        });
    }
}
