#!/usr/bin/env node
/* Benchmark peer: a small sockjs-node (sockjs 0.3.24) broadcast app that speaks sockjs-gateway's
 * protocol (docs/PROTOCOL.md) as our load generators and publishers see it: tokens in the URL
 * (or as the first message), the user/client/global channels, the message JSON the browser
 * receives, the publish API, the same log lines for the listeners, and optionally the same Redis
 * wire format (so that peer nodes and gateway nodes can even share one Redis).
 *
 * One process, one thread, written the way sockjs-node apps are written: a Map of channel name
 * -> Set of connections, and per channel one JSON.stringify and a conn.write() per subscriber.
 * Not implemented: event filters (the JWT "events" claim is ignored, {"events": [...]} gets an
 * error message), slow-consumer closing (4008), several Redis shards, proxy-related listener
 * options. See bench/peers/README.md. */
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const sockjs = require('sockjs');

const REDIS_CHANNEL = 'sockjs-gateway:publish';
const REDIS_SEQ_PREFIX = 'sockjs-gateway:seq:';
const SEQ_TTL_MS = 24 * 3600 * 1000;
const JWT_MAX_LEN = 4096;
const JWT_MAX_CLAIM_LEN = 256;

/* ---------- options (same names and defaults as the gateway's, where they exist) ---------- */

const USAGE = `usage: node server.js [options]
  --listen HOST:PORT            SockJS listener (127.0.0.1:8080; port 0: any, logged)
  --api-listen HOST:PORT        publish API listener (127.0.0.1:8081)
  --prefix PATH                 SockJS prefix (/sockjs)
  --jwt-secret SECRET           HS256 secret (repeatable, at most 2)
  --api-key KEY                 key of the publish API (Authorization: Bearer KEY)
  --redis URL | --engine URL    local (default) or redis://HOST:PORT (one instance)
  --allow-anonymous             ?site=S without a token receives global:S
  --auth-timeout-ms N           time for a token message (10000, then 4003)
  --heartbeat-ms N              sockjs heartbeat_delay (25000)
  --disconnect-delay-ms N       sockjs disconnect_delay (5000)
  --response-limit N            sockjs response_limit (131072)
  --api-max-body-bytes N        publish request limit (1048576, 413)
  --max-ids N  --max-sites N  --max-name-bytes N  --max-data-bytes N   publish limits
  --log-level LEVEL             error, warn, info (default) or debug
  --help`;

const cfg = {
    listen: '127.0.0.1:8080',
    'api-listen': '127.0.0.1:8081',
    prefix: '/sockjs',
    'jwt-secret': [],
    'api-key': '',
    engine: 'local',
    'allow-anonymous': false,
    'auth-timeout-ms': 10000,
    'heartbeat-ms': 25000,
    'disconnect-delay-ms': 5000,
    'response-limit': 128 * 1024,
    'api-max-body-bytes': 1024 * 1024,
    'max-ids': 10000,
    'max-sites': 100,
    'max-name-bytes': 256,
    'max-data-bytes': 64 * 1024,
    'log-level': 'info',
};
const NUMERIC = new Set(['auth-timeout-ms', 'heartbeat-ms', 'disconnect-delay-ms',
    'response-limit', 'api-max-body-bytes', 'max-ids', 'max-sites', 'max-name-bytes',
    'max-data-bytes']);

function die(msg) {
    process.stderr.write(`sockjs-node-peer: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    let engineGiven = false;
    for (let i = 0; i < argv.length; i++) {
        let arg = argv[i];
        if (arg === '--help' || arg === '-h') {
            process.stdout.write(USAGE + '\n');
            process.exit(0);
        }
        if (!arg.startsWith('--')) {
            die(`unexpected argument '${arg}'`);
        }
        arg = arg.slice(2);
        let value;
        const eq = arg.indexOf('=');
        if (eq >= 0) {
            value = arg.slice(eq + 1);
            arg = arg.slice(0, eq);
        }
        if (arg === 'redis') {
            arg = 'engine';
        }
        if (arg === 'allow-anonymous') {
            cfg[arg] = true;
            continue;
        }
        if (!(arg in cfg)) {
            die(`unknown option --${arg} (--help lists them)`);
        }
        if (value === undefined) {
            if (i + 1 >= argv.length) {
                die(`--${arg} needs a value`);
            }
            value = argv[++i];
        }
        if (arg === 'engine' && engineGiven) {
            die('one --engine/--redis only (this peer does not shard over several Redis)');
        }
        engineGiven = engineGiven || arg === 'engine';
        if (arg === 'jwt-secret') {
            if (cfg[arg].length >= 2) {
                die('at most two --jwt-secret');
            }
            cfg[arg].push(value);
        } else if (NUMERIC.has(arg)) {
            const n = Number(value);
            if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
                die(`--${arg}: expected a positive integer, got '${value}'`);
            }
            cfg[arg] = n;
        } else {
            cfg[arg] = value;
        }
    }
}

parseArgs(process.argv.slice(2));

const LEVELS = ['error', 'warn', 'info', 'debug'];
const logThreshold = LEVELS.indexOf(String(cfg['log-level']).toLowerCase());
if (logThreshold < 0) {
    die(`--log-level: unknown level '${cfg['log-level']}'`);
}

/* The gateway's log line format: "2026-11-21T10:00:00.000Z INFO text". */
function log(level, text) {
    const i = LEVELS.indexOf(level);
    if (i <= logThreshold) {
        process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${text}\n`);
    }
}

/* At most one line per second for each kind of repeated warning. */
const lastLogged = new Map();
function logLimited(kind, level, text) {
    const now = Date.now();
    if ((lastLogged.get(kind) || 0) + 1000 <= now) {
        lastLogged.set(kind, now);
        log(level, text);
    }
}

function splitHostPort(spec, what) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(spec) || /^([^:]*):(\d+)$/.exec(spec);
    if (!m || Number(m[2]) > 65535) {
        die(`--${what}: expected HOST:PORT, got '${spec}'`);
    }
    return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

/* ---------- counters (the /api/stats document has the gateway's shape) ---------- */

const stats = {
    connections: 0, opened: 0, authenticated: 0, auth_failures: 0, malformed_messages: 0,
    deliveries: 0,
    hub_publishes: 0, hub_messages: 0,
    engine_published: 0, engine_delivered: 0, engine_dropped: 0, engine_malformed: 0,
    engine_reconnects: 0,
    api_requests: 0, api_publishes: 0, api_rejected: 0, api_unauthorized: 0,
    api_unavailable: 0,
};

/* ---------- JWT (HS256), as gateway/jwt.c checks it ---------- */

const B64URL = /^[A-Za-z0-9_-]*$/;
const secrets = cfg['jwt-secret'].map((s) => Buffer.from(s, 'utf8'));

class TokenError extends Error {
    constructor(expired) {
        super(expired ? 'expired token' : 'invalid token');
        this.expired = expired;
    }
}

/* Canonical unpadded base64url only (no stray low bits), like the gateway. */
function b64urlDecode(s) {
    if (s.length % 4 === 1 || !B64URL.test(s)) {
        return null;
    }
    const buf = Buffer.from(s, 'base64url');
    if (buf.toString('base64url') !== s) {
        return null;
    }
    return buf;
}

function parseObject(buf) {
    try {
        const v = JSON.parse(buf.toString('utf8'));
        return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
    } catch {
        return null;
    }
}

/* Text claims: no C0/C1 controls or DEL, at most 256 UTF-8 bytes, not empty. */
function validText(s, max) {
    return typeof s === 'string' && s.length > 0 && Buffer.byteLength(s) <= max &&
        !/[\u0000-\u001f\u007f-\u009f]/.test(s);
}

function textClaim(claims, key, allowInteger) {
    const v = claims[key];
    if (validText(v, JWT_MAX_CLAIM_LEN)) {
        return v;
    }
    if (allowInteger && Number.isInteger(v)) {
        return String(v);
    }
    throw new TokenError(false);
}

/* Returns {sub, client, site}; throws TokenError. */
function verifyToken(token) {
    if (token.length > JWT_MAX_LEN) {
        throw new TokenError(false);
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        throw new TokenError(false);
    }
    const header = b64urlDecode(parts[0]);
    const payload = b64urlDecode(parts[1]);
    const sig = b64urlDecode(parts[2]);
    if (!header || !payload || !sig) {
        throw new TokenError(false);
    }
    const h = parseObject(header);
    if (!h || h.alg !== 'HS256' || sig.length !== 32) {
        throw new TokenError(false);
    }
    const signed = token.slice(0, parts[0].length + 1 + parts[1].length);
    let ok = false;
    for (const secret of secrets) {
        const mac = crypto.createHmac('sha256', secret).update(signed).digest();
        if (crypto.timingSafeEqual(mac, sig)) {
            ok = true;
        }
    }
    if (!ok) {
        throw new TokenError(false);
    }
    const claims = parseObject(payload);
    if (!claims || !Number.isInteger(claims.exp)) {
        throw new TokenError(false);
    }
    const now = Math.floor(Date.now() / 1000);
    if (now >= claims.exp) {
        throw new TokenError(true);
    }
    if (claims.nbf !== undefined) {
        if (!Number.isInteger(claims.nbf)) {
            throw new TokenError(false);
        }
        if (now < claims.nbf) {
            throw new TokenError(true);
        }
    }
    return {
        sub: textClaim(claims, 'sub', true),
        client: textClaim(claims, 'client', true),
        site: textClaim(claims, 'site', false),
    };
}

/* ---------- channels: name -> Set of connections ---------- */

const channels = new Map();

function subscribe(conn, names, name) {
    let set = channels.get(name);
    if (!set) {
        set = new Set();
        channels.set(name, set);
    }
    set.add(conn);
    names.push(name);
}

function unsubscribeAll(conn, names) {
    for (const name of names) {
        const set = channels.get(name);
        if (set) {
            set.delete(conn);
            if (set.size === 0) {
                channels.delete(name);
            }
        }
    }
    names.length = 0;
}

function subscriptionCount() {
    let n = 0;
    for (const set of channels.values()) {
        n += set.size;
    }
    return n;
}

/* ---------- sessions ---------- */

const sockjsServer = sockjs.createServer({
    prefix: cfg.prefix,
    log: () => {},
    heartbeat_delay: cfg['heartbeat-ms'],
    disconnect_delay: cfg['disconnect-delay-ms'],
    response_limit: cfg['response-limit'],
});

function queryOf(url) {
    const q = typeof url === 'string' ? url.indexOf('?') : -1;
    return new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
}

sockjsServer.on('connection', (conn) => {
    if (!conn) {
        return; /* sockjs-node emits null for a session that closed before opening */
    }
    stats.connections++;
    stats.opened++;
    const names = [];  /* the channels this session is in */
    let state = 'waiting';  /* waiting | anonymous | authenticated */
    let identity = null;
    let authTimer = null;

    function authenticate(token) {
        let id;
        try {
            id = verifyToken(token);
        } catch (err) {
            stats.auth_failures++;
            log('info', `session refused: ${err.message}`);
            conn.close(err.expired ? 4002 : 4001, err.expired ? 'Token expired' : 'Invalid token');
            return;
        }
        if (state === 'authenticated') {
            if (id.site !== identity.site || id.sub !== identity.sub) {
                sendError('token for another identity');
            }
            return;
        }
        unsubscribeAll(conn, names);
        if (authTimer) {
            clearTimeout(authTimer);
            authTimer = null;
        }
        identity = id;
        subscribe(conn, names, `user:${id.site}:${id.sub}`);
        subscribe(conn, names, `client:${id.site}:${id.client}`);
        subscribe(conn, names, `global:${id.site}`);
        state = 'authenticated';
        stats.authenticated++;
    }

    function sendError(reason) {
        stats.malformed_messages++;
        conn.write(JSON.stringify({ error: reason }));
    }

    conn.on('close', () => {
        stats.connections--;
        unsubscribeAll(conn, names);
        if (authTimer) {
            clearTimeout(authTimer);
            authTimer = null;
        }
    });

    conn.on('data', (msg) => {
        let obj;
        try {
            obj = JSON.parse(msg);
        } catch {
            obj = null;
        }
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj) ||
            Object.keys(obj).length !== 1) {
            sendError('expected one JSON object with one key');
        } else if ('token' in obj) {
            if (typeof obj.token === 'string') {
                authenticate(obj.token);
            } else {
                sendError('token must be a string');
            }
        } else if ('events' in obj) {
            sendError('event filters are not supported by this peer');
        } else {
            sendError('unknown message');
        }
    });

    const query = queryOf(conn.url);
    const token = query.get('token');
    if (token !== null) {
        authenticate(token);
        return;
    }
    const site = query.get('site');
    if (site && cfg['allow-anonymous'] && !site.includes(':') && Buffer.byteLength(site) <= 256) {
        subscribe(conn, names, `global:${site}`);
        state = 'anonymous';
        return;
    }
    authTimer = setTimeout(() => {
        authTimer = null;
        if (state === 'waiting') {
            log('info', `session closed: no token within ${cfg['auth-timeout-ms']} ms`);
            conn.close(4003, 'Authentication required');
        }
    }, cfg['auth-timeout-ms']);
});

/* ---------- publishes ---------- */

class PublishError extends Error {
    constructor(message, status) {
        super(message);
        this.status = status || 400;
    }
}

/* A site, id or event: not empty, bounded, no control characters, no ':' in sites. */
function validName(s, isSite) {
    return s.length > 0 && Buffer.byteLength(s) <= cfg['max-name-bytes'] &&
        !/[\u0000-\u001f\u007f]/.test(s) && !(isSite && s.includes(':'));
}

/* Checks one publish object the way pubsub_publish_from_json() does (same reasons, same
 * order) and returns {scope, sites, ids (strings) or null, event, data, seqs or null}. */
function parsePublish(obj) {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        throw new PublishError('a publish must be a JSON object');
    }
    const scope = obj.scope;
    if (typeof scope !== 'string') {
        throw new PublishError('missing scope');
    }
    if (scope !== 'user' && scope !== 'client' && scope !== 'global') {
        throw new PublishError('unknown scope');
    }
    const hasSite = obj.site !== undefined;
    const hasSites = obj.sites !== undefined;
    if (hasSite === hasSites) {
        throw new PublishError('exactly one of site and sites is required');
    }
    if (hasSites && (!Array.isArray(obj.sites) || obj.sites.length === 0)) {
        throw new PublishError('sites must be a non-empty array');
    }
    if (hasSites && obj.sites.length > cfg['max-sites']) {
        throw new PublishError('too many sites');
    }
    if (obj.ids !== undefined && !Array.isArray(obj.ids)) {
        throw new PublishError('ids must be an array');
    }
    const nIds = obj.ids ? obj.ids.length : 0;
    if (scope === 'global' && nIds > 0) {
        throw new PublishError('a global publish takes no ids');
    }
    if (scope !== 'global' && nIds === 0) {
        throw new PublishError('ids are required for user and client scopes');
    }
    if (nIds > cfg['max-ids']) {
        throw new PublishError('too many ids');
    }
    if (typeof obj.event !== 'string' || !validName(obj.event, false)) {
        throw new PublishError('missing or invalid event');
    }
    if (obj.data === undefined) {
        throw new PublishError('missing data');
    }
    const sites = hasSites ? obj.sites : [obj.site];
    const nChannels = sites.length * (nIds || 1);
    const seqs = obj.seqs;
    if (seqs !== undefined && (!Array.isArray(seqs) || seqs.length !== nChannels)) {
        throw new PublishError('seqs must have one integer per channel');
    }
    if (Buffer.byteLength(JSON.stringify(obj.data)) > cfg['max-data-bytes']) {
        throw new PublishError('data too large', 413);
    }
    for (const s of sites) {
        if (typeof s !== 'string' || !validName(s, true)) {
            throw new PublishError('invalid site');
        }
    }
    let ids = null;
    if (nIds) {
        ids = obj.ids.map((v) => {
            const s = typeof v === 'string' ? v : Number.isInteger(v) ? String(v) : null;
            if (s === null || !validName(s, false)) {
                throw new PublishError('invalid id');
            }
            return s;
        });
    }
    if (seqs !== undefined && !seqs.every(Number.isInteger)) {
        throw new PublishError('seqs must have one integer per channel');
    }
    return { scope, sites, ids, event: obj.event, data: obj.data, seqs: seqs || null };
}

/* Channel names of a publish, site-major (the order of "seqs"). */
function channelNames(pub) {
    const out = [];
    for (const site of pub.sites) {
        if (pub.ids) {
            for (const id of pub.ids) {
                out.push(`${pub.scope}:${site}:${id}`);
            }
        } else {
            out.push(`global:${site}`);
        }
    }
    return out;
}

/* The local fan-out: per channel, one JSON.stringify of the message the gateway sends, written
 * to every subscriber. */
function deliver(pub) {
    stats.hub_publishes++;
    const perSite = pub.ids ? pub.ids.length : 1;
    let k = 0;
    for (const site of pub.sites) {
        for (let j = 0; j < perSite; j++, k++) {
            const name = pub.ids ? `${pub.scope}:${site}:${pub.ids[j]}` : `global:${site}`;
            const subs = channels.get(name);
            if (!subs) {
                continue;
            }
            const text = JSON.stringify({
                scope: pub.scope, site, event: pub.event, data: pub.data,
                seq: pub.seqs ? pub.seqs[k] : null,
            });
            stats.hub_messages++;
            for (const conn of subs) {
                conn.write(text);
                stats.deliveries++;
            }
        }
    }
}

/* Local engine: counters kept here, forgotten 24 h after a channel's last message. */
const seqCounters = new Map();  /* name -> {seq, at} */
let coarseNow = Date.now();
setInterval(() => {
    coarseNow = Date.now();
}, 1000).unref();
setInterval(() => {
    for (const [name, c] of seqCounters) {
        if (coarseNow - c.at >= SEQ_TTL_MS) {
            seqCounters.delete(name);
        }
    }
}, 60 * 1000).unref();

const localEngine = {
    name: 'local',
    available: () => true,
    publish(pub) {
        pub.seqs = channelNames(pub).map((name) => {
            let c = seqCounters.get(name);
            if (!c) {
                c = { seq: 0, at: 0 };
                seqCounters.set(name, c);
            }
            c.at = coarseNow;
            return ++c.seq;
        });
        stats.engine_published++;
        stats.engine_delivered++;
        deliver(pub);
    },
};

/* Redis engine: the gateway's wire format. The node that takes the publish runs the gateway's
 * script (INCR + PEXPIRE sockjs-gateway:seq:<channel> for each channel, then PUBLISH the publish
 * with "seqs" first on sockjs-gateway:publish); every node SUBSCRIBEs and delivers locally. */
const SEQ_SCRIPT =
    'local seqs = {}\n' +
    'for i = 1, #KEYS do\n' +
    "  seqs[i] = redis.call('INCR', KEYS[i])\n" +
    "  redis.call('PEXPIRE', KEYS[i], ARGV[2])\n" +
    'end\n' +
    `redis.call('PUBLISH', '${REDIS_CHANNEL}',\n` +
    "  '{\"seqs\":[' .. table.concat(seqs, ',') .. '],' .. string.sub(ARGV[1], 2))\n" +
    'return #KEYS\n';

function redisEngine(url) {
    const Redis = require('ioredis');
    const opts = {
        enableOfflineQueue: false,  /* down means 503, as in the gateway */
        maxRetriesPerRequest: 0,
        retryStrategy: (times) => Math.min(times * 100, 5000),
        lazyConnect: false,
    };
    const cmd = new Redis(url, opts);
    /* The subscriber waits for Redis however long it takes; ioredis resubscribes after
     * reconnecting. */
    const sub = new Redis(url, { ...opts, enableOfflineQueue: true, maxRetriesPerRequest: null });
    cmd.defineCommand('gwPublish', { lua: SEQ_SCRIPT });
    for (const [c, what] of [[cmd, 'command'], [sub, 'subscriber']]) {
        c.on('error', (err) => logLimited(`redis-${what}`, 'warn',
            `redis ${what} connection: ${err.message}`));
        c.on('ready', () => log('info', `redis ${what} connection to ${url} ready`));
        c.on('reconnecting', () => stats.engine_reconnects++);
    }
    sub.subscribe(REDIS_CHANNEL).catch((err) => log('error', `SUBSCRIBE: ${err.message}`));
    sub.on('message', (channel, message) => {
        let pub;
        try {
            pub = parsePublish(JSON.parse(message));
        } catch (err) {
            stats.engine_malformed++;
            logLimited('redis-malformed', 'warn', `redis: malformed publish: ${err.message}`);
            return;
        }
        stats.engine_delivered++;
        deliver(pub);
    });
    return {
        name: 'redis',
        available: () => cmd.status === 'ready' && sub.status === 'ready',
        publish(pub) {
            const body = { scope: pub.scope, sites: pub.sites };
            if (pub.ids) {
                body.ids = pub.ids;
            }
            body.event = pub.event;
            body.data = pub.data;
            const keys = channelNames(pub).map((name) => REDIS_SEQ_PREFIX + name);
            stats.engine_published++;
            cmd.gwPublish(keys.length, ...keys, JSON.stringify(body), String(SEQ_TTL_MS))
                .catch((err) => {
                    stats.engine_dropped++;
                    logLimited('redis-publish', 'warn', `redis: publish failed: ${err.message}`);
                });
        },
    };
}

let engine;
if (cfg.engine === 'local') {
    engine = localEngine;
} else if (/^redis:\/\/[^,\s]+$/.test(cfg.engine)) {
    engine = redisEngine(cfg.engine);
} else {
    die(`--engine ${cfg.engine}: expected 'local' or one redis://HOST:PORT`);
}

/* ---------- publish API ---------- */

function respond(res, status, body, extra) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store, no-cache, no-transform, must-revalidate, max-age=0',
        ...extra,
    });
    res.end(text);
}

function authorized(req) {
    const key = cfg['api-key'];
    const auth = req.headers.authorization;
    if (!key || typeof auth !== 'string' || auth.length !== 7 + Buffer.byteLength(key) ||
        auth.slice(0, 7).toLowerCase() !== 'bearer ') {
        return false;
    }
    const got = Buffer.from(auth.slice(7), 'latin1');
    const want = Buffer.from(key, 'utf8');
    return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function handlePublish(req, res, body) {
    let root;
    try {
        root = JSON.parse(body.toString('utf8'));
    } catch {
        stats.api_rejected++;
        respond(res, 400, { error: 'malformed JSON' });
        return;
    }
    const many = Array.isArray(root);
    const items = many ? root : [root];
    if (items.length === 0) {
        stats.api_rejected++;
        respond(res, 400, { error: 'no publish in the array' });
        return;
    }
    /* All or nothing: everything is checked before anything is published. */
    const pubs = [];
    for (let i = 0; i < items.length; i++) {
        try {
            const pub = parsePublish(items[i]);
            pub.seqs = null;  /* seqs come from the engine, never from the API */
            pubs.push(pub);
        } catch (err) {
            stats.api_rejected++;
            const out = { error: err.message };
            if (many) {
                out.index = i;
            }
            respond(res, err.status, out);
            return;
        }
    }
    if (!engine.available()) {
        stats.api_unavailable++;
        respond(res, 503, { error: 'engine unavailable' });
        return;
    }
    const ids = pubs.map(() => crypto.randomUUID());
    stats.api_publishes += pubs.length;
    respond(res, 202, { ids });
    for (const pub of pubs) {
        engine.publish(pub);
    }
}

function statsDocument() {
    return {
        sessions: {
            connections: stats.connections, opened: stats.opened,
            authenticated: stats.authenticated, auth_failures: stats.auth_failures,
            malformed_messages: stats.malformed_messages, deliveries: stats.deliveries,
            filtered: 0,
        },
        hub: {
            channels: channels.size, subscriptions: subscriptionCount(),
            publishes: stats.hub_publishes, messages: stats.hub_messages,
            deliveries: stats.deliveries,
        },
        engine: {
            name: engine.name, available: engine.available(),
            published: stats.engine_published, delivered: stats.engine_delivered,
            dropped: stats.engine_dropped, malformed: stats.engine_malformed,
            reconnects: stats.engine_reconnects,
        },
        api: {
            requests: stats.api_requests, publishes: stats.api_publishes,
            rejected: stats.api_rejected, unauthorized: stats.api_unauthorized,
            unavailable: stats.api_unavailable,
        },
    };
}

const apiServer = http.createServer((req, res) => {
    stats.api_requests++;
    const q = req.url.indexOf('?');
    const path = q >= 0 ? req.url.slice(0, q) : req.url;
    const isPublish = path === '/api/publish';
    const isStats = path === '/api/stats';
    if (!isPublish && !isStats) {
        respond(res, 404, { error: 'no such endpoint' });
        return;
    }
    if (!authorized(req)) {
        stats.api_unauthorized++;
        respond(res, 401, {
            error: cfg['api-key'] ? 'missing or wrong API key' : 'no API key configured',
        });
        return;
    }
    const want = isPublish ? 'POST' : 'GET';
    if (req.method !== want) {
        respond(res, 405, { error: 'method not allowed' }, { Allow: want });
        return;
    }
    if (isStats) {
        respond(res, 200, statsDocument());
        return;
    }
    const limit = cfg['api-max-body-bytes'];
    const announced = Number(req.headers['content-length']);
    if (announced > limit) {
        respond(res, 413, { error: 'request body too large' }, { Connection: 'close' });
        return;
    }
    const chunks = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
        if (failed) {
            return;
        }
        size += chunk.length;
        if (size > limit) {
            failed = true;
            respond(res, 413, { error: 'request body too large' }, { Connection: 'close' });
            return;
        }
        chunks.push(chunk);
    });
    req.on('end', () => {
        if (!failed) {
            handlePublish(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        }
    });
});

/* ---------- listeners ---------- */

const sockjsHttp = http.createServer((req, res) => {
    /* Everything outside the prefix (sockjs-node hands it on to us). */
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
    res.end('Not Found\n');
});
sockjsServer.installHandlers(sockjsHttp, { prefix: cfg.prefix });

for (const srv of [sockjsHttp, apiServer]) {
    srv.keepAliveTimeout = 60000;  /* the gateway's --idle-timeout-ms */
    srv.headersTimeout = 65000;
    srv.requestTimeout = 0;
}

function listen(srv, spec, what, label) {
    const { host, port } = splitHostPort(spec, what);
    return new Promise((resolve) => {
        srv.once('error', (err) => {
            log('error', `cannot listen on ${spec}: ${err.message}`);
            process.exit(1);
        });
        srv.listen({ host, port, backlog: 4096 }, () => {
            const a = srv.address();
            const addr = a.family === 'IPv6' ? `[${a.address}]` : a.address;
            log('info', `${label} ${addr}:${a.port}`);
            resolve();
        });
    });
}

function shutdown(signal) {
    log('info', `signal ${signal}: shutting down`);
    log('info', 'stopped');
    process.exit(0);
}
process.on('SIGTERM', () => shutdown(15));
process.on('SIGINT', () => shutdown(2));

(async () => {
    await listen(sockjsHttp, cfg.listen, 'listen', 'listening on');
    await listen(apiServer, cfg['api-listen'], 'api-listen', 'publish API on');
    if (!cfg['api-key']) {
        log('warn', 'no --api-key: the publish API refuses every request');
    }
    if (secrets.length === 0) {
        log('warn', 'no --jwt-secret: every session token is refused');
    }
})();
