/* The gateway under test, for the Node test suites (tests/node, tests/browser): started with
 * --test-app on an ephemeral port read from its log, stopped with SIGTERM, and required to exit
 * 0 (under ASan a leak makes the status non-zero). */
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 20000;

/* Starts the gateway and resolves once its log names the port (and the publish API's, when
 * `args` has --api-listen). stderr is drained for the whole run: an unread pipe would
 * eventually block the gateway's logging. Options: `args` (more arguments), `listen` (default
 * 127.0.0.1:0; a fixed port restarts a gateway where it was), `testApp` (default true). */
function startGateway(binary, { args = [], listen = '127.0.0.1:0', testApp = true } = {}) {
    const argv = [...(testApp ? ['--test-app'] : []), '--listen', listen, '--drain-ms', '0',
        ...args];
    const child = spawn(binary, argv, { stdio: ['ignore', 'inherit', 'pipe'] });
    const wantApi = args.includes('--api-listen');
    const gw = { child, port: 0, apiPort: 0, log: '', exit: null };
    gw.exited = new Promise((resolve) => {
        child.on('exit', (code, signal) => {
            gw.exit = { code, signal };
            resolve(gw.exit);
        });
    });
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`gateway did not log "listening on" within ${START_TIMEOUT_MS} ms; ` +
                `log:\n${gw.log}`));
        }, START_TIMEOUT_MS);
        child.on('error', (err) => {
            clearTimeout(timer);
            reject(new Error(`cannot start ${binary}: ${err.message}`));
        });
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (chunk) => {
            gw.log += chunk;
            if (gw.port && (gw.apiPort || !wantApi)) {
                return;
            }
            const m = /listening on 127\.0\.0\.1:(\d+)/.exec(gw.log);
            const a = /publish API on 127\.0\.0\.1:(\d+)/.exec(gw.log);
            if (m && (a || !wantApi)) {
                gw.port = Number(m[1]);
                gw.apiPort = a ? Number(a[1]) : 0;
                clearTimeout(timer);
                resolve(gw);
            }
        });
        gw.exited.then((st) => {
            if (!gw.port) {
                clearTimeout(timer);
                reject(new Error(`gateway exited early (code ${st.code}, signal ${st.signal}); ` +
                    `log:\n${gw.log}`));
            }
        });
    });
}

/* SIGTERM must give a clean exit with status 0 (under ASan a leak makes it non-zero). */
async function stopGateway(gw) {
    if (gw.exit === null) {
        gw.child.kill('SIGTERM');
    }
    let timer;
    const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, STOP_TIMEOUT_MS, null);
    });
    const st = await Promise.race([gw.exited, timeout]);
    clearTimeout(timer);
    if (st === null) {
        gw.child.kill('SIGKILL');
        throw new Error(`gateway ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; log tail:\n` +
            gw.log.slice(-4000));
    }
    assert.equal(st.signal, null, `gateway died of signal ${st.signal}; log tail:\n` +
        gw.log.slice(-4000));
    assert.equal(st.code, 0, `gateway exit status after SIGTERM; log tail:\n${gw.log.slice(-4000)}`);
}

module.exports = { startGateway, stopGateway };
