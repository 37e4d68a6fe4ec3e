'use strict';
/*
 * The reference server, sockjs-node 0.3.24 (npm, pinned in package-lock.json), serving /echo
 * with the options of the gateway's --test-app /echo that change bytes on the wire
 * (response_limit 4096; SOCKJS_TEST_APP.md), so that a test can compare what each server
 * writes for the same input. Not a test file itself: tests start it.
 *
 * Run: node tests/node/sockjs_node_server.js
 * It listens on 127.0.0.1 on an ephemeral port and prints `listening on 127.0.0.1:<port>` once
 * ready. It exits when its stdin closes or on SIGTERM.
 */

const http = require('node:http');
const path = require('node:path');

const SOCKJS_VERSION = '0.3.24';

const modDir = path.join(__dirname, 'node_modules', 'sockjs');
let sockjs;
try {
    sockjs = require(modDir);
} catch (err) {
    console.error(`${modDir} is missing: run scripts/setup.sh --test (or: cd tests/node && ` +
        `npm ci): ${err.message}`);
    process.exit(2);
}
const version = require(path.join(modDir, 'package.json')).version;
if (version !== SOCKJS_VERSION) {
    console.error(`sockjs ${version} is installed, the tests pin ${SOCKJS_VERSION}: ` +
        'reinstall with: cd tests/node && npm ci');
    process.exit(2);
}

const echo = sockjs.createServer({
    sockjs_url: 'http://localhost:8080/lib/sockjs.js',
    response_limit: 4096,
    log: () => {},
});
echo.on('connection', (conn) => {
    conn.on('data', (msg) => conn.write(msg));
});

const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
server.listen(0, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
});

/* The test that started this process owns it: when its end of stdin closes, we go. */
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
