'use strict';
/*
 * The demo page (web/demo.html, which uses web/sockjs-gateway.js) served by the gateway, in
 * Debian's headless Chromium (playwright-core), once per transport:
 *   1. /demo/ connects on load, without a click (the transport and token given in the query);
 *      published events appear with their scope, name and seq;
 *   2. Disconnect, an event published meanwhile, Connect: the page says "recovered" and shows
 *      the missed event with the next seq;
 *   3. the gateway is killed (SIGKILL) and restarted on the same port: the page reconnects by
 *      itself and, the embedded engine having lost its history, says "not recovered — state
 *      refetched" for every scope; a new event shows seq 1 of the new history.
 * Also: a module script imports /static/sockjs-gateway.js for its effect (globalThis).
 *
 * Run: GW_BINARY=build/sockjs-gateway node --test tests/browser/gateway_client.test.js
 * Needs tests/browser/node_modules (playwright-core) and /usr/bin/chromium:
 * scripts/setup.sh --test.
 */

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { startGateway, stopGateway } = require('../js/gateway.js');
const { GATEWAY_ARGS, mintToken, publish, within } = require('../js/fixtures.js');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'];
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];
/* Bounds for every wait, generous for an ASan gateway: the page's own reconnect backoff (the
 * library's defaults, 0.5 s doubling) comes on top of a gateway's start. */
const STEP_MS = 20000;
const CASE_MS = 90000;

function setupProblem() {
    if (!fs.existsSync(path.join(__dirname, 'node_modules', 'playwright-core', 'package.json'))) {
        return 'tests/browser/node_modules is missing: scripts/setup.sh --test';
    }
    if (!fs.existsSync(CHROMIUM)) {
        return `${CHROMIUM} is missing: scripts/setup.sh --test`;
    }
    if (!process.env.GW_BINARY || !fs.existsSync(process.env.GW_BINARY)) {
        return 'GW_BINARY does not name the sockjs-gateway binary: build it first';
    }
    return null;
}

const problem = setupProblem();

if (problem) {
    test('demo page test prerequisites', () => assert.fail(problem));
} else {
    const { chromium } = require('playwright-core');
    const binary = process.env.GW_BINARY;
    let browser;

    before(async () => {
        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
            args: CHROMIUM_ARGS, timeout: STEP_MS });
    });

    after(async () => {
        if (browser) {
            await browser.close();
        }
    });

    /* The rows of the demo's event table, as {scope, event, seq}. */
    const rows = (page) => page.$$eval('#rows tr', (trs) => trs.map((tr) => ({
        scope: tr.querySelector('.scope').textContent,
        event: tr.querySelector('.event').textContent,
        seq: tr.querySelector('.seq').textContent })));

    test('a module script imports the library for its effect', { timeout: CASE_MS }, async () => {
        const gw = await startGateway(binary, { testApp: false, args: GATEWAY_ARGS });
        const context = await browser.newContext();
        try {
            const page = await context.newPage();
            await page.goto(`http://127.0.0.1:${gw.port}/sockjs`);
            const r = await page.evaluate(async () => {
                const before = typeof globalThis.SockJSGateway;
                const mod = await import('/static/sockjs-gateway.js');
                return [before, typeof globalThis.SockJSGateway.connect, Object.keys(mod).length];
            });
            assert.deepEqual(r, ['undefined', 'function', 0]);
        } finally {
            await context.close();
            await stopGateway(gw);
        }
    });

    test('the demo page connects on load; the transport choice reconnects; ?connect=0 waits',
        { timeout: CASE_MS }, async () => {
            const gw = await startGateway(binary, { testApp: false, args: GATEWAY_ARGS });
            const context = await browser.newContext();
            try {
                const page = await context.newPage();
                const token = encodeURIComponent(mintToken({ sub: 'u-load', client: 'c-load',
                    site: 'demo' }));
                const wait = (fn, arg) => page.waitForFunction(fn, arg,
                    { timeout: STEP_MS, polling: 20 });
                const readyOver = (t) => wait((tr) =>
                    document.getElementById('state').textContent === 'ready' &&
                    document.getElementById('negotiated').textContent === tr, t);
                await page.goto(`http://127.0.0.1:${gw.port}/demo/?token=${token}` +
                    '&transport=websocket', { timeout: STEP_MS });
                await readyOver('websocket');
                await page.selectOption('#transport', 'xhr-polling');
                await readyOver('xhr-polling');

                await page.goto(`http://127.0.0.1:${gw.port}/demo/?connect=0&token=${token}`,
                    { timeout: STEP_MS });
                assert.equal(await page.evaluate(() => window.demoGateway), undefined);
                assert.equal(await page.$eval('#state', (e) => e.textContent), 'closed');
                await page.click('#connect');
                await wait(() => document.getElementById('state').textContent === 'ready');
            } finally {
                await context.close();
                await stopGateway(gw);
            }
        });

    describe('demo page', () => {
        for (const transport of TRANSPORTS) {
            test(transport, { timeout: CASE_MS }, async () => {
                await runCase(transport);
            });
        }
    });

    async function runCase(transport) {
        const id = { sub: `u-${transport}`, client: `c-${transport}`, site: 'demo' };
        const token = mintToken(id);
        let gw = await startGateway(binary, { testApp: false, args: GATEWAY_ARGS });
        const port = gw.port;
        const context = await browser.newContext();
        const events = [];
        let step = 'load the page';
        try {
            const page = await context.newPage();
            page.on('console', (m) => events.push(`console.${m.type()}: ${m.text()}`));
            page.on('pageerror', (e) => events.push(`pageerror: ${e.stack || e}`));
            const text = (sel) => page.$eval(sel, (e) => e.textContent);
            const until = (what, fn, arg) => {
                step = what;
                return page.waitForFunction(fn, arg, { timeout: STEP_MS, polling: 20 });
            };
            const rowsAtLeast = (n) => until(`${n} rows`, (k) =>
                document.querySelectorAll('#rows tr').length >= k, n);
            const pub = (scope, event, g = gw) => publish(g.apiPort, { scope, site: id.site,
                ids: [scope === 'user' ? id.sub : id.client], event, data: { event } });

            await page.goto(`http://127.0.0.1:${port}/demo/?transport=${transport}` +
                `&token=${encodeURIComponent(token)}`, { timeout: STEP_MS });
            await until('ready', () => document.getElementById('state').textContent === 'ready');
            assert.equal(await text('#negotiated'), transport);
            assert.equal(await text('#note'), '');

            step = 'publish';
            await pub('user', 'demo.one');
            await pub('client', 'demo.two');
            await rowsAtLeast(2);
            assert.deepEqual(await rows(page), [
                { scope: 'user', event: 'demo.one', seq: '1' },
                { scope: 'client', event: 'demo.two', seq: '1' }]);

            /* 2: Disconnect, publish, Connect. Another library instance in the page sees the
             * publish first, so the history holds it when the page asks. */
            step = 'watcher';
            await page.evaluate((t) => {
                window.seen = [];
                window.watch = window.SockJSGateway.connect('/sockjs', { token: () => t,
                    transports: ['websocket'] });
                window.watch.on('*', (d, m) => window.seen.push(m.event));
            }, token);
            await until('watcher ready', () => window.watch.state === 'ready');
            await page.click('#disconnect');
            await until('closed', () => document.getElementById('state').textContent === 'closed');
            await pub('user', 'demo.missed');
            await until('the watcher sees it', () => window.seen.includes('demo.missed'));
            await page.evaluate(() => window.watch.close());
            await page.click('#connect');
            await until('recovered note', () =>
                document.getElementById('note').textContent === 'recovered: missed events follow');
            await rowsAtLeast(3);
            assert.deepEqual((await rows(page))[2], { scope: 'user', event: 'demo.missed',
                seq: '2' });

            /* 3: the gateway dies and comes back on the same port, its history gone. */
            step = 'kill the gateway';
            gw.child.kill('SIGKILL');
            await within(STEP_MS, 'the killed gateway exits', gw.exited);
            gw = null;
            /* Not waiting for the page to notice: sockjs-client's eventsource receiver retries
             * a refused connection by itself and reports nothing until a server answers. */
            step = 'restart the gateway';
            gw = await startGateway(binary, { testApp: false, listen: `127.0.0.1:${port}`,
                args: GATEWAY_ARGS });
            await until('not-recovered note', () => document.getElementById('note').textContent
                .startsWith('not recovered \u2014 state refetched'));
            assert.equal(await text('#note'),
                'not recovered \u2014 state refetched (user, client, global)');
            assert.equal(await page.$eval('#note', (e) => e.className), 'lost');
            step = 'publish after the restart';
            await pub('user', 'demo.after');
            await rowsAtLeast(4);
            assert.deepEqual((await rows(page))[3], { scope: 'user', event: 'demo.after',
                seq: '1' });
            assert.deepEqual(events.filter((e) => e.startsWith('pageerror')), []);
        } catch (err) {
            throw new Error(`${transport}: failed at "${step}": ${err.message}\n--- page ---\n` +
                `${events.join('\n') || '(nothing)'}\n--- gateway log (tail) ---\n` +
                `${gw ? gw.log.split('\n').slice(-30).join('\n') : '(no gateway)'}`);
        } finally {
            await context.close().catch(() => {});
            if (gw) {
                await stopGateway(gw);
            }
        }
    }
}
