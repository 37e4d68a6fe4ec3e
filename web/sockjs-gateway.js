/* sockjs-gateway client (README.md), ES2020: global SockJSGateway in a classic script or
 * browser module import; the module in CommonJS and Node import(). */
(function (root, make) {
  if (typeof module === 'object' && module.exports) module.exports = make(root);
  else root.SockJSGateway = make(root);
})(globalThis, (root) => {
'use strict';
/**
 * @typedef {{seq: ?number, epoch: ?string}} Position
 * @typedef {{scope: string, site: string, event: string, data: *, seq: ?number}} Message
 * @typedef {{reconnect: boolean, recovered: Object<string, boolean>, lost: string[],
 *   positions: Object<string, Position>, transport: ?string}} ReadyInfo
 * @typedef {{token?: () => (string|Promise<string>), site?: string, tokenInUrl?: boolean,
 *   transports?: string[], SockJS?: Function, sockjsOptions?: Object, minDelayMs?: number,
 *   maxDelayMs?: number, drainDelayMs?: number, readyTimeoutMs?: number,
 *   positions?: Object<string, Position>, random?: () => number}} Options
 */
const later = (e) => setTimeout(() => { throw e; });
const add = (map, k, fn) => (map[k] = map[k] || []).push(fn);
const remove = (map, k, fn) => {
  map[k] = (map[k] || []).filter((f) => fn && f !== fn);
  if (!map[k].length) delete map[k];
};

class Gateway {
  /** @param {string} url @param {Options} o */
  constructor(url, o) {
    this.url = url;
    this.o = o = Object.assign({ minDelayMs: 500, maxDelayMs: 30000, drainDelayMs: 1000,
      readyTimeoutMs: 20000, random: Math.random }, o);
    this.ev = {}; /* handlers per event name, and per lifecycle type: */
    this.st = {};
    /** @type {Object<string, Position>} */ this.pos = {};
    this.lost = {}; /* lost unless recovered at the first ready */
    for (const s in o.positions || {}) this.pos[s] = this.lost[s] = o.positions[s];
    this.attempt = this.readies = this.gen = 0;
    this.sock = this.asked = this.sent = this.timer = null;
    this.closed = false;
    this.queries = [];
    this.state = '';
    /* Next turn: handlers added after connect() see "connecting". */
    queueMicrotask(() => this.closed || this._open());
  }

  _emit(type, info) {
    const fns = (this.st[type] || []).slice();
    if (type !== 'error' && type !== 'token') this.state = type;
    if (type === 'error' && !fns.length && info.error) later(info.error);
    for (const fn of fns) {
      try { fn(info); } catch (e) { later(e); }
    }
  }

  _send(obj) {
    const ok = this.sock?.readyState === 1;
    if (ok) this.sock.send(JSON.stringify(obj));
    return ok;
  }

  _open() {
    const o = this.o, gen = ++this.gen;
    this._emit('connecting', { attempt: this.attempt });
    Promise.resolve().then(() => o.token ? o.token() : null).then((t) => {
      if (gen !== this.gen) return;
      let rec = null, auth = null;
      const q = [], u = this.url;
      for (const s in this.pos) {
        const p = this.pos[s];
        if (typeof p.seq === 'number' && typeof p.epoch === 'string')
          (rec = rec || {})[s] = { seq: p.seq, epoch: p.epoch };
      }
      this.asked = rec;
      if (t == null) q.push('site=' + encodeURIComponent(o.site || ''));
      else if (o.tokenInUrl) q.push('token=' + encodeURIComponent(t));
      else auth = rec ? { token: t, recover: rec } : { token: t };
      if (rec && !auth) q.push('recover=' + encodeURIComponent(JSON.stringify(rec)));
      let S = o.SockJS || root.SockJS;
      if (!S && typeof require === 'function') S = require('sockjs-client');
      /* An unbound polling session is as safe as its id (PROTOCOL.md). */
      const so = Object.assign({ sessionId: 16 }, o.sockjsOptions);
      if (o.transports) so.transports = o.transports;
      const sock = this.sock = new S(u + (q.length ? (u.includes('?') ? '&' : '?') +
        q.join('&') : ''), null, so);
      sock.onopen = () => {
        /* With the token, the filter applies to the replay too. */
        this.sent = auth && JSON.stringify(auth.events = this._names());
        if (auth) this._send(auth);
        this._sendFilter();
        this.timer = setTimeout(() => sock.close(4000, 'No ready message'), o.readyTimeoutMs);
      };
      sock.onmessage = (e) => { if (sock === this.sock) this._message(e.data); };
      sock.onclose = (e) => { if (sock === this.sock) this._closed(e.code, e.reason); };
    }).catch((e) => {
      if (gen !== this.gen) return;
      this._emit('error', { type: 'token', error: e });
      this._retry(this._backoff(), 0, 'no token');
    });
  }

  /** @return {number} random(0, min(maxDelayMs, minDelayMs * 2^attempt++)) */
  _backoff() {
    const o = this.o;
    return Math.floor(o.random() * Math.min(o.maxDelayMs,
      o.minDelayMs * 2 ** Math.min(this.attempt++, 40)));
  }

  _retry(delay, code, reason) {
    this._emit('disconnect', { code, reason, delayMs: delay, attempt: this.attempt,
      willRetry: !this.closed });
    if (!this.closed) this.timer = setTimeout(() => this._open(), delay);
  }

  _closed(code, reason) {
    const q = this.queries[0], d = this.o.drainDelayMs;
    clearTimeout(this.timer);
    this.sock = null;
    if (q?.sent) this.queries.shift().reject(new Error('disconnected'));
    if (code === 4001) this._emit('error', { type: 'auth', code, reason });
    /* 1001: a drain (503 Retry-After: 1 meanwhile). */
    this._retry(code === 1001 ? Math.floor(d + this.o.random() * d) : this._backoff(), code,
      reason);
  }

  _message(raw) {
    let m;
    try { m = Object(JSON.parse(raw)); } catch { return; }
    if (m.ready) return this._ready(m.ready);
    if (typeof m.event === 'string') return this._deliver(m);
    if (m.presence && this.queries.length) {
      this.queries.shift().resolve(m.presence);
      return this._query();
    }
    if (typeof m.error === 'string') this._error(m.error);
  }

  _ready(r) {
    const asked = this.asked || {}, again = this.readies++ > 0, lost = [], recovered = {};
    clearTimeout(this.timer);
    for (const s of ['user', 'client', 'global']) {
      const p = r[s], ok = !!(asked[s] && p && p.recovered === true);
      if (!p) continue;
      if (asked[s]) recovered[s] = ok;
      /* Recovered: the replay moves seq on. */
      this.pos[s] = ok ? asked[s] : { seq: p.seq ?? null, epoch: p.epoch ?? null };
      if (!ok && (again || this.lost[s])) lost.push(s);
    }
    this.lost = {};
    this.attempt = 0;
    this._emit('ready', { reconnect: again, recovered, lost, positions: this.positions(),
      transport: this.sock?.transport });
    this._query();
  }

  /** @param {Message} m */
  _deliver(m) {
    const p = this.pos[m.scope], e = m.event;
    if (p && typeof m.seq === 'number' && !(p.seq > m.seq)) p.seq = m.seq;
    for (const k in this.ev) {
      const n = k.length - 1;
      if (k !== e && !(k[n] === '*' && e.slice(0, n) === k.slice(0, n))) continue;
      for (const fn of this.ev[k].slice()) {
        try { fn(m.data, m); } catch (x) { this._emit('error', { type: 'handler', error: x }); }
      }
    }
  }

  _error(text) {
    const sock = this.sock, q = this.queries[0];
    if (text === 'token expired' && this.o.token) {
      Promise.resolve().then(this.o.token).then((t) => {
        if (sock === this.sock) this._send({ token: t });
        this._emit('token', { renewed: true });
      }, (e) => this._emit('error', { type: 'token', error: e }));
    } else if (q?.sent && /^presence|^authenticate/.test(text)) {
      this.queries.shift().reject(new Error(text));
      this._query();
    } else {
      this._emit('error', { type: 'server', message: text });
    }
  }

  /* The names registered (["*"] if "*" is), once per turn if changed. */
  _filter() {
    if (!this.filtering) queueMicrotask(() => this._sendFilter());
    this.filtering = true;
  }

  _names() {
    const n = Object.keys(this.ev);
    return n.includes('*') || n.length > 64 ? ['*'] : n;
  }

  _sendFilter() {
    const names = this._names(), text = JSON.stringify(names);
    this.filtering = false;
    if (text !== this.sent && this._send({ events: names })) this.sent = text;
  }

  _query() {
    const q = this.queries[0];
    if (q && !q.sent && this.state === 'ready') q.sent = this._send({ presence: q.scope });
  }

  /** fn(data, message) per event name ("a.b", "a.*": any suffix, "*": all).
   * @param {string} name @param {(data: *, m: Message) => void} fn @return {Gateway} */
  on(name, fn) { add(this.ev, name, fn); this._filter(); return this; }

  /** @param {string} name @param {Function} [fn] none: all of name's @return {Gateway} */
  off(name, fn) { remove(this.ev, name, fn); this._filter(); return this; }

  /** Lifecycle: connecting, ready ({@link ReadyInfo}), disconnect, token, error (README).
   * @param {string} type @param {(info: Object) => void} fn @return {Gateway} */
  onState(type, fn) { add(this.st, type, fn); return this; }

  /** @param {string} type @param {Function} [fn] @return {Gateway} */
  offState(type, fn) { remove(this.st, type, fn); return this; }

  /** Presence of the session's company ("client") or user; one query at a time.
   * @param {string} scope @return {Promise<Object>} */
  presence(scope) {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('closed'));
      this.queries.push({ scope, resolve, reject, sent: false });
      this._query();
    });
  }

  /** @return {Object<string, Position>} a copy of the positions */
  positions() { return JSON.parse(JSON.stringify(this.pos)); }

  /** Closes for good; open presence queries are rejected. */
  close() {
    const sock = this.sock;
    if (this.closed) return;
    this.closed = true;
    this.gen++;
    this.sock = null;
    clearTimeout(this.timer);
    for (const q of this.queries.splice(0)) q.reject(new Error('closed'));
    if (sock) sock.close();
    this._retry(0, 1000, 'closed');
    this.state = 'closed';
  }
}

return {
  /** @param {string} url SockJS URL ("https://host/sockjs") @param {Options} [o]
   * @return {Gateway} */
  connect: (url, o) => new Gateway(url, o || {}),
};
});
