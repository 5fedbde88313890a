// rtkit.js: the browser client of rtkit routes (see transports/PROTOCOL.md).
//
// One RealtimeClient talks to one route URL over WebSocket, Server-Sent
// Events (read with fetch streaming, messages up by POST) or long-polling,
// falls back along that chain when a proxy is in the way, reconnects with
// exponential backoff and jitter, and resumes SSE/long-poll sessions without
// losing or repeating a message. It looks like the browser's WebSocket:
//
//   import {RealtimeClient} from "/rtkit/rtkit.js";
//   const c = new RealtimeClient("/echo", {token});
//   c.onmessage = (e) => console.log(e.data);
//   c.send("hello"); // queued until open
//
// Leaving the page ends an SSE or long-poll session at once: on pagehide
// the client sends the session's DELETE ({"code": 1001, "reason": "page
// closed"}) with fetch's keepalive, which outlives the page, so the
// server's handler Close runs now rather than when the session's resume
// window (30 s) runs out. A WebSocket the browser closes itself on unload;
// one whose page enters the back/forward cache the client closes with 1000
// "page closed", as the cached page may keep it open.
// The client listens to pagehide, not unload or beforeunload, which would
// keep the page out of the back/forward cache; when the page comes back from
// that cache (pageshow with persisted), the client connects again, as after
// a drop, with a new session. close() called while connecting or
// reconnecting sends the same DELETE for the session it was resuming.
//
// A POST answered 429 (the server's inbox is full, its handler is behind)
// was not accepted: the client sends the same message with the same
// Realtime-Seq again after Retry-After seconds (at most 30 s), without
// reconnecting; the messages queued behind it wait, so the order holds.
//
// No dependencies; an ES module for current browsers.

/** readyState values, as on WebSocket. */
export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

/**
 * The defaults of RealtimeClient's options: the table "Timeouts and
 * defaults" of transports/PROTOCOL.md, which the Go client shares (see
 * doc.go for the reasons).
 */
export const defaults = Object.freeze({
  transports: ["websocket", "sse", "longpoll"],
  upgradeTimeout: 3000,
  firstEventTimeout: 3000,
  requestTimeout: 10000,
  minDelay: 500,
  maxDelay: 10000,
  maxRetries: Infinity,
  maxQueue: 256,
  maxEventSize: 8 << 20,
  pingInterval: 25000,
  pongTimeout: 10000,
});

const SUBPROTOCOL = "rtkit";
const BEARER_PREFIX = "rtkit.bearer.";

// maxRetryAfter caps the pause a server's Retry-After may ask for, in ms.
const maxRetryAfter = 30000;

// retryAfter reads a Retry-After header (seconds, or an HTTP date) as
// milliseconds: one second when it is missing or malformed, at most
// maxRetryAfter.
function retryAfter(v) {
  let ms = NaN;
  if (v && /^[0-9]+$/.test(v.trim())) ms = parseInt(v, 10) * 1000;
  else if (v) ms = Date.parse(v) - Date.now();
  if (!(ms >= 0)) ms = 1000;
  return Math.min(ms, maxRetryAfter);
}

function isSession(transport) {
  return transport === "sse" || transport === "longpoll";
}

// isRefusal reports an HTTP status that refuses the client's credentials
// or origin: the connection ends with 1008 rather than retry in vain.
function isRefusal(status) {
  return status === 401 || status === 403;
}

/**
 * shouldReconnect is the default policy of transports/PROTOCOL.md's table
 * "What ends, what reconnects": reconnect after 1001 going away, 1006
 * connection lost, 1012 service restart, 1013 try again later and 1014 bad
 * gateway; every other code ends the connection, 1011 (the handler failed)
 * and the application's 3000–4999 included, so that a handler error does
 * not become a reconnect loop.
 */
export function shouldReconnect(code) {
  return code === 1001 || code === 1006 || code === 1012 || code === 1013 || code === 1014;
}

// timeoutSignal returns an AbortSignal that aborts after ms, or when
// parent (if any) aborts.
function timeoutSignal(ms, parent) {
  const t = AbortSignal.timeout(ms);
  return parent ? AbortSignal.any([parent, t]) : t;
}

// base64url without padding of a UTF-8 string, for the WebSocket
// subprotocol entry that carries the bearer token.
function base64url(s) {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function isBinary(data) {
  return typeof data !== "string";
}

function makeEvent(type, props) {
  let ev;
  if (type === "message" && typeof MessageEvent === "function") {
    ev = new MessageEvent("message", { data: props.data });
    props = Object.assign({}, props);
    delete props.data;
  } else if (type === "close" && typeof CloseEvent === "function") {
    ev = new CloseEvent("close", { code: props.code, reason: props.reason, wasClean: props.wasClean });
    props = {};
  } else {
    ev = new Event(type);
  }
  for (const [k, v] of Object.entries(props || {})) {
    Object.defineProperty(ev, k, { value: v, enumerable: true });
  }
  return ev;
}

/**
 * EventStreamParser decodes text/event-stream (the HTML Standard's
 * "Parsing an event stream"): lines end in CRLF, LF or CR, even split across
 * chunks; data lines accumulate joined by LF; lines starting with ":" are
 * comments; one space after the colon is dropped; an id with NUL is ignored;
 * retry takes ASCII digits only; a blank line dispatches unless data is
 * empty. onEvent({type, data, id}) runs per event, onComment(text) per
 * comment, onRetry(ms) per valid retry field.
 *
 * It takes linear time whatever the chunking: each chunk is scanned once
 * for line ends, and a partial line is kept as a list of pieces, joined
 * once when its end arrives. One event (its data lines plus the line being
 * read) may hold at most maxEventSize characters (default 8 MiB); push
 * throws a RangeError beyond that, after which the parser must not be used.
 * scanned counts the characters examined, for tests of the work per byte.
 */
export class EventStreamParser {
  constructor(onEvent, onComment, onRetry, maxEventSize) {
    this.onEvent = onEvent;
    this.onComment = onComment || (() => {});
    this.onRetry = onRetry || (() => {});
    this.maxEventSize = maxEventSize > 0 ? maxEventSize : defaults.maxEventSize;
    this.scanned = 0;
    this.parts = []; // pieces of the line being read
    this.partLen = 0;
    this.skipLF = false; // the last chunk ended in CR: a leading LF belongs to it
    this.data = []; // the event's data lines
    this.dataLen = 0;
    this.type = "";
    this.lastId = "";
    this.idBuf = "";
    this.first = true;
  }

  /** push parses a decoded chunk of text. */
  push(text) {
    const n = text.length;
    if (n === 0) return;
    let start = 0;
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.skipLF) {
      this.skipLF = false;
      if (text.charCodeAt(start) === 10) start++;
    }
    // The next CR and LF at or after start, found once each: n when there
    // is none, so a chunk of many LFs and no CR is not rescanned per line.
    let cr = -1, lf = -1;
    while (start < n) {
      if (cr < start) cr = this._find(text, "\r", start);
      if (lf < start) lf = this._find(text, "\n", start);
      const end = cr < lf ? cr : lf;
      if (end >= n) break;
      let line = text.slice(start, end);
      if (this.parts.length) {
        this.parts.push(line);
        line = this.parts.join("");
        this.parts = [];
        this.partLen = 0;
      }
      if (end === cr) {
        if (end + 1 < n) start = text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
        else { start = n; this.skipLF = true; }
      } else start = end + 1;
      this._line(line);
    }
    if (start < n) {
      this.parts.push(start === 0 ? text : text.slice(start));
      this.partLen += n - start;
    }
    if (this.partLen + this.dataLen > this.maxEventSize) {
      throw new RangeError("rtkit: event over maxEventSize (" + this.maxEventSize + " characters)");
    }
  }

  _find(text, ch, from) {
    const i = text.indexOf(ch, from);
    const end = i < 0 ? text.length : i;
    this.scanned += end - from + 1;
    return end;
  }

  _line(line) {
    if (line === "") { this._dispatch(); return; }
    if (line.charCodeAt(0) === 58) { // ":"
      this.onComment(line.charCodeAt(1) === 32 ? line.slice(2) : line.slice(1));
      return;
    }
    const colon = line.indexOf(":");
    let field = line, value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(line.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1);
    }
    switch (field) {
      case "event": this.type = value; break;
      case "data":
        this.data.push(value);
        this.dataLen += value.length + 1;
        if (this.dataLen > this.maxEventSize) {
          throw new RangeError("rtkit: event over maxEventSize (" + this.maxEventSize + " characters)");
        }
        break;
      case "id": if (!value.includes("\0")) this.idBuf = value; break;
      case "retry": if (/^[0-9]+$/.test(value)) this.onRetry(parseInt(value, 10)); break;
    }
  }

  _dispatch() {
    this.lastId = this.idBuf;
    if (this.data.length === 0) { this.type = ""; return; }
    const data = this.data.length === 1 ? this.data[0] : this.data.join("\n");
    const type = this.type || "message";
    this.data = [];
    this.dataLen = 0;
    this.type = "";
    this.onEvent({ type, data, id: this.lastId });
  }
}

// Attempt failures.
class Refused extends Error {} // the server answered and said no (4xx): final
class Unavailable extends Error {} // network error or 5xx: retry later

/**
 * RealtimeClient is a connection to an rtkit route that survives proxies,
 * network drops and server restarts. It is an EventTarget with the events
 * open, message, close, error, statechange, gap and refused, and the
 * matching on* properties.
 */
export class RealtimeClient extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = new URL(url, typeof location !== "undefined" ? location.href : undefined).href;
    this.options = Object.assign({}, defaults, options);
    if (this.options.token != null && !/^[\x21-\x7e]+$/.test(this.options.token)) {
      // It travels in an HTTP header, which carries no other characters.
      throw new TypeError("rtkit: token must be printable ASCII without spaces");
    }
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    this.onstatechange = null;
    this.ongap = null;
    this.onrefused = null;
    this.readyState = CONNECTING;
    /** state is "connecting", "open", "reconnecting", "closing" or "closed". */
    this.state = "connecting";
    /** transport is the transport in use or being tried: "websocket", "sse" or "longpoll". */
    this.transport = null;
    /** id is the server's public connection id on SSE and long-polling. */
    this.id = null;
    this.reconnects = 0;

    this._neg = null; // the negotiation answer
    this._blocked = new Set(); // transports a proxy refuses (a later one worked)
    this._attempt = 0; // failed attempts in a row, for the backoff
    this._gen = 0; // bumps on every connection attempt; stale callbacks check it
    this._ws = null;
    this._abort = null; // AbortController of the SSE stream or poll
    this._timer = null;
    this._watchdog = null;
    // The SSE/long-poll session.
    this._token = null;
    this._lastSeq = 0; // highest message seq received
    this._sendSeq = 0; // highest message seq assigned to a POST
    // Outgoing messages not yet known to be delivered: {data, seq, token}.
    this._queue = [];
    this._pumping = false;
    this._wake = null; // ends the pump's current pause early
    this._closeReq = null;
    this._hidden = false; // pagehide ended the session; pageshow reconnects
    this._conns = 0; // server connections opened (WebSocket or session): later ones are gaps
    this._gapReason = null; // why the next new server connection is one ("unknown session")
    this._heartbeats = false; // this WebSocket's server sends heartbeats
    this._post = null; // AbortController of the POST in flight
    this._opening = null; // an SSE or long-poll open in flight: {kind, ac}

    // pagehide, not unload: it keeps the page eligible for the back/forward
    // cache. Workers have no pages.
    this._onPageHide = (e) => this._pageHidden(e);
    this._onPageShow = (e) => this._pageShown(e);
    if (typeof window !== "undefined" && typeof window.addEventListener === "function") {
      window.addEventListener("pagehide", this._onPageHide);
      window.addEventListener("pageshow", this._onPageShow);
    }

    this._connect();
  }

  get bufferedAmount() {
    let n = this._ws ? this._ws.bufferedAmount : 0;
    for (const m of this._queue) n += typeof m.data === "string" ? m.data.length : (m.data.byteLength || m.data.size || 0);
    return n;
  }

  _emit(type, props) {
    const ev = makeEvent(type, props || {});
    this.dispatchEvent(ev);
    const h = this["on" + type];
    if (typeof h === "function") {
      try { h.call(this, ev); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  _setState(state, props) {
    if (this.state === state) return;
    this.state = state;
    this.readyState = { connecting: CONNECTING, reconnecting: CONNECTING, open: OPEN, closing: CLOSING, closed: CLOSED }[state];
    this._emit("statechange", Object.assign({ state, transport: this.transport }, props));
  }

  _headers(extra) {
    const h = Object.assign({}, extra);
    if (this.options.token) h.Authorization = "Bearer " + this.options.token;
    return h;
  }

  _resolve(u) {
    return new URL(u, this.url).href;
  }

  _transportURL(kind) {
    const t = this._neg && this._neg.transports.find((x) => x.transport === kind);
    if (t) return this._resolve(t.url);
    const u = new URL(this.url);
    if (kind !== "websocket") u.searchParams.set("transport", kind);
    return u.href;
  }

  _deadAfter() {
    const n = this._neg || {};
    const ping = n.pingInterval > 0 ? n.pingInterval : this.options.pingInterval;
    const pong = n.pongTimeout > 0 ? n.pongTimeout : this.options.pongTimeout;
    return ping + pong;
  }

  // ---- connecting ----

  async _connect() {
    const gen = ++this._gen;
    this._clearTimers();
    try {
      if (this._token && isSession(this.transport)) {
        // A session to resume: keep its transport (and its queued POSTs).
        if (!this._neg) {
          await this._negotiate(gen).catch(() => {}); // a hint only; the resume itself tells
          if (gen !== this._gen) return;
        }
        await this._resume(gen);
        return;
      }
      await this._negotiate(gen);
      if (gen !== this._gen) return;
      // The route's order, among the transports the client allows; without
      // a negotiation answer, the default order.
      const listed = this._neg ? this._neg.transports.map((t) => t.transport) : defaults.transports;
      const order = listed.filter((k) => this.options.transports.includes(k) && defaults.transports.includes(k));
      const candidates = order.filter((k) => !this._blocked.has(k));
      if (candidates.length === 0) throw new Refused("no transport in common with the server");
      const failed = [];
      let lastErr = null;
      for (const kind of candidates) {
        if (gen !== this._gen) return;
        this.transport = kind;
        this._emit("statechange", { state: this.state, transport: kind });
        try {
          const t0 = performance.now();
          if (kind === "websocket") await this._openWS(gen);
          else if (kind === "sse") await this._openSSE(gen, false);
          else await this._openLP(gen, false);
          if (gen !== this._gen) return;
          // Transports that failed while a later one works are blocked on
          // this path (a proxy), not down: skip them from now on.
          for (const k of failed) this._blocked.add(k);
          this.openedIn = performance.now() - t0;
          return;
        } catch (e) {
          if (gen !== this._gen) return;
          if (e instanceof Refused) throw e;
          lastErr = e;
          failed.push(kind);
          this._emit("error", { message: kind + ": " + e.message, transport: kind });
        }
      }
      throw lastErr || new Unavailable("no transport connected");
    } catch (e) {
      if (gen !== this._gen) return;
      if (e instanceof Refused) {
        this._finish(1008, e.message, false);
        return;
      }
      this._retry(e);
    }
  }

  // _negotiate asks the route which transports it allows. The answer is a
  // hint: without one (a proxy, an older server, a timeout) the transports'
  // own answers decide. Only 401 and 403 are final.
  async _negotiate(gen) {
    let res;
    try {
      res = await fetch(this.url, {
        headers: this._headers({ Accept: "application/json" }), cache: "no-store", credentials: "same-origin",
        signal: timeoutSignal(this.options.upgradeTimeout),
      });
      if (gen !== this._gen) return;
      if (isRefusal(res.status)) throw new Refused("negotiation: HTTP " + res.status);
      const n = res.ok ? await res.json().catch(() => null) : null;
      if (n && Array.isArray(n.transports)) this._neg = n;
      else this._emit("error", { message: "negotiation: HTTP " + res.status + ", not an rtkit answer", transport: null });
    } catch (e) {
      if (e instanceof Refused) throw e;
      if (gen === this._gen) this._emit("error", { message: "negotiation: " + e.message, transport: null });
    }
  }

  _retry(err) {
    this._closeTransport();
    if (this.state === "closing" || this.state === "closed") return;
    this._attempt++;
    if (this._attempt > this.options.maxRetries) {
      this._finish(1006, "gave up reconnecting", false);
      return;
    }
    const delay = this._delay(this._attempt);
    if (this._timer) clearTimeout(this._timer);
    this._setState(this.reconnects > 0 || this._everOpen ? "reconnecting" : "connecting", { delay, error: err && err.message });
    this._timer = setTimeout(() => {
      this._timer = null;
      this._connect();
    }, delay);
  }

  // _serverConnection records a new server connection (a WebSocket, or a
  // session that is not a resume): after the first, messages sent to the
  // client meanwhile are lost, and the page hears of it as a gap first.
  _serverConnection() {
    if (this._conns++ > 0) this._gap({ reason: this._gapReason || "new connection" });
    this._gapReason = null;
  }

  // _opened is called when a transport is ready: flush the queue.
  _opened(props) {
    if (this._everOpen) this.reconnects++;
    this._everOpen = true;
    this._attempt = 0;
    this._setState("open");
    this._emit("open", Object.assign({ transport: this.transport, reconnects: this.reconnects }, props));
    this._flush();
  }

  // _lost is called when an open transport drops (or a server close frame
  // with code arrives): reconnect or finish.
  _lost(code, reason, gen) {
    if (gen !== this._gen || (this.state !== "open" && this.state !== "closing")) return;
    if (this.state === "closing" && this._closeReq) {
      // Our own close: report what we asked for (servers need not echo
      // the reason).
      this._finish(this._closeReq.code, this._closeReq.reason, true);
      return;
    }
    const policy = this.options.shouldReconnect || ((c) => shouldReconnect(c));
    if (!policy(code, reason)) {
      this._finish(code, reason, code !== 1006);
      return;
    }
    this._gen++;
    this._retry(new Error("lost: " + code + " " + reason));
  }

  _finish(code, reason, wasClean) {
    if (this.state === "closed") return;
    this._gen++;
    this._clearTimers();
    this._closeTransport();
    this._queue = [];
    this._token = null;
    this._hidden = false;
    if (this._post) this._post.abort(); // its answer no longer matters
    this._wakePump();
    if (typeof window !== "undefined" && typeof window.removeEventListener === "function") {
      window.removeEventListener("pagehide", this._onPageHide);
      window.removeEventListener("pageshow", this._onPageShow);
    }
    this._setState("closed", { code, reason });
    this._emit("close", { code, reason, wasClean });
  }

  _clearTimers() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
    if (this._watchdog) clearTimeout(this._watchdog);
    this._watchdog = null;
  }

  _closeTransport() {
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(); } catch (e) { /* already closed */ }
    }
    if (this._abort) {
      this._abort.abort();
      this._abort = null;
    }
    if (this._watchdog) clearTimeout(this._watchdog);
    this._watchdog = null;
  }

  _arm(gen) {
    // No byte for pingInterval+pongTimeout: the path is dead even if no
    // error says so; drop it and reconnect.
    if (this._watchdog) clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => {
      this._watchdog = null;
      if (gen !== this._gen) return;
      this._lost(1006, this.transport === "websocket" ? "no heartbeat" : "no keepalive", gen);
    }, this._deadAfter());
  }

  // ---- WebSocket ----

  _openWS(gen) {
    return new Promise((resolve, reject) => {
      const u = new URL(this._transportURL("websocket"));
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      const protocols = [SUBPROTOCOL];
      if (this.options.token) protocols.push(BEARER_PREFIX + base64url(this.options.token));
      let ws;
      try {
        ws = new WebSocket(u.href, protocols);
      } catch (e) {
        reject(e);
        return;
      }
      ws.binaryType = "arraybuffer";
      this._ws = ws;
      let opened = false;
      const fail = (msg) => {
        if (opened) return;
        clearTimeout(timer);
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(); } catch (e) { /* ignore */ }
        if (this._ws === ws) this._ws = null;
        reject(new Error(msg));
      };
      // A proxy that swallows the upgrade leaves the socket CONNECTING for
      // minutes; give up after upgradeTimeout and try the next transport.
      const timer = setTimeout(() => fail("upgrade timed out"), this.options.upgradeTimeout);
      ws.onerror = () => fail("upgrade failed");
      ws.onclose = (e) => fail("upgrade failed: " + e.code);
      ws.onopen = () => {
        clearTimeout(timer);
        if (gen !== this._gen) { ws.close(); return; }
        opened = true;
        ws.onerror = () => this._emit("error", { message: "websocket error", transport: "websocket" });
        ws.onclose = (e) => {
          if (this._ws === ws) this._ws = null;
          this._lost(e.code, e.reason, gen);
        };
        // On the rtkit subprotocol an empty binary frame is the server's
        // heartbeat (PROTOCOL.md): never a message. The first one says the
        // server sends them; from then on silence for pingInterval +
        // pongTimeout means a half-open socket.
        this._heartbeats = false;
        const rtkit = ws.protocol === SUBPROTOCOL;
        ws.onmessage = (e) => {
          if (rtkit && e.data instanceof ArrayBuffer && e.data.byteLength === 0) {
            this._heartbeats = true;
            this._arm(gen);
            return;
          }
          if (this._heartbeats) this._arm(gen);
          this._emit("message", { data: e.data, transport: "websocket" });
        };
        this._token = null;
        this._serverConnection();
        this._opened({ protocol: ws.protocol });
        resolve();
      };
    });
  }

  // ---- SSE over fetch ----

  // _openSSE opens (resume=false) or resumes a stream. It resolves once
  // the stream is known to flow: the session event of a new stream, the
  // response headers of a resumed one. A stream that says nothing within
  // firstEventTimeout is stuck in a buffering proxy: reject, so that the
  // caller falls back to long-polling.
  _openSSE(gen, resume) {
    return new Promise((resolve, reject) => {
      const ac = new AbortController();
      this._abort = ac;
      // A new stream's session exists on the server before its event
      // arrives: close() meanwhile waits for the token to DELETE it.
      const opening = resume ? null : { gen, ac, closeWith: null };
      if (opening) this._opening = opening;
      const gone = () => gen !== this._gen && !(opening && opening.closeWith);
      let settled = false, failed = false;
      const settle = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this._opening === opening) this._opening = null;
        if (err) {
          failed = true;
          if (this._abort === ac) this._abort = null;
          ac.abort();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(() => settle(new Error("no event within firstEventTimeout (a buffering proxy?)")), this.options.firstEventTimeout);
      const headers = this._headers({ Accept: "text/event-stream" });
      if (resume) headers["Last-Event-ID"] = this._token + "." + this._lastSeq;
      fetch(this._transportURL("sse"), { headers, cache: "no-store", credentials: "same-origin", signal: ac.signal })
        .then(async (res) => {
          if (gone()) { ac.abort(); return; }
          if (!res.ok || !res.body) {
            await res.body?.cancel().catch(() => {});
            settle(isRefusal(res.status) ? new Refused("sse: HTTP " + res.status) : new Unavailable("sse: HTTP " + res.status));
            return;
          }
          if (resume) {
            // A resumed stream sends no session event: its headers are
            // the sign that it flows.
            this._opened({ resumed: true });
            settle();
          }
          if (gen === this._gen) this._arm(gen);
          const parser = new EventStreamParser(
            (ev) => this._sseEvent(ev, gen, settle, opening),
            () => {},
            () => {},
            this.options.maxEventSize,
          );
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (gone() || failed) { ac.abort(); return; }
            if (done) break;
            if (gen === this._gen) this._arm(gen);
            try {
              parser.push(value);
            } catch (e) {
              if (!(e instanceof RangeError) || gen !== this._gen) throw e;
              // Too large to hold: end, as a message over the read limit
              // does, rather than reconnect to the same event.
              ac.abort();
              if (this._token) this._deleteSession(this._token, 1009, "event too large");
              this._finish(1009, e.message, false);
              return;
            }
            if (gone()) { ac.abort(); return; }
          }
          // The stream ended without a close event: resume it.
          if (!settled) settle(new Unavailable("sse: stream ended"));
          else this._lost(1006, "stream ended", gen);
        })
        .catch((e) => {
          if (gone() || failed) return;
          if (!settled) settle(new Unavailable("sse: " + e.message));
          else this._lost(1006, "stream failed", gen);
        });
    });
  }

  _sseEvent(ev, gen, settle, opening) {
    if (gen !== this._gen) {
      // close() came while the new stream was opening: end its session.
      if (ev.type === "session" && opening && opening.closeWith) {
        const { code, reason } = opening.closeWith;
        opening.closeWith = null;
        this._deleteSession(JSON.parse(ev.data).token, code, reason);
        opening.ac.abort();
      }
      return;
    }
    switch (ev.type) {
      case "session": {
        const s = JSON.parse(ev.data);
        this._newSession(s);
        if (this.state === "open") this._flush(); // a resume found the session gone: this is its successor
        else this._opened({ resumed: false });
        settle();
        break;
      }
      case "message":
      case "binary": {
        const dot = ev.id.lastIndexOf(".");
        const seq = dot >= 0 ? parseInt(ev.id.slice(dot + 1), 10) : NaN;
        if (seq > 0) {
          if (seq <= this._lastSeq) return; // already seen
          this._lastSeq = seq;
        }
        this._emit("message", { data: ev.type === "binary" ? fromBase64(ev.data) : ev.data, transport: "sse" });
        break;
      }
      case "gap": {
        const g = JSON.parse(ev.data);
        // "unknown session" comes before the fresh session event, which
        // reports it.
        if (g.reason) this._gapReason = g.reason;
        else this._gap(g);
        break;
      }
      case "close": {
        const c = JSON.parse(ev.data);
        this._token = null; // the session is over: a reconnect starts a new one
        this._lost(c.code, c.reason || "", gen);
        break;
      }
    }
  }

  _gap(g) {
    this._emit("gap", { after: g.after ?? null, reason: g.reason ?? null });
  }

  // _newSession adopts a fresh session: inbound positions restart, and
  // messages not yet acknowledged get new numbers on it, in order.
  _newSession(s) {
    this._token = s.token;
    this.id = s.id;
    this._lastSeq = 0;
    this._sendSeq = 0;
    for (const m of this._queue) m.seq = 0;
    this._opening = null;
    this._serverConnection();
  }

  // ---- long-polling ----

  async _openLP(gen, resume) {
    if (!resume) {
      let res, body;
      const ac = new AbortController();
      this._abort = ac;
      // The session exists once the server answers: close() meanwhile
      // waits for the token to DELETE it.
      const opening = { gen, ac, closeWith: null };
      this._opening = opening;
      try {
        res = await fetch(this._transportURL("longpoll"), {
          method: "POST", headers: this._headers(), cache: "no-store", credentials: "same-origin",
          signal: timeoutSignal(this.options.upgradeTimeout, ac.signal),
        });
        body = res.ok ? await res.json() : null;
      } catch (e) {
        throw new Unavailable("longpoll: " + e.message);
      } finally {
        if (this._opening === opening) this._opening = null;
      }
      if (gen !== this._gen) {
        if (opening.closeWith && body && body.token) this._deleteSession(body.token, opening.closeWith.code, opening.closeWith.reason);
        return;
      }
      if (!res.ok) {
        if (isRefusal(res.status)) throw new Refused("longpoll: HTTP " + res.status);
        throw new Unavailable("longpoll: HTTP " + res.status);
      }
      this._newSession(body);
      this._opened({ resumed: false });
      this._pollLoop(gen);
      return;
    }
    // A resumed session is open once its first poll is answered or held:
    // refusals (404, 409, 503) come back at once.
    let pending = true;
    const held = setTimeout(() => {
      if (pending && gen === this._gen) { pending = false; this._opened({ resumed: true }); }
    }, 500);
    const fail = (code, reason) => {
      clearTimeout(held);
      if (!pending) { this._lost(code, reason, gen); return; }
      pending = false;
      this._gen++;
      this._retry(new Error(reason));
    };
    const ok = () => {
      clearTimeout(held);
      if (pending) { pending = false; this._opened({ resumed: true }); }
    };
    this._pollLoop(gen, fail, ok);
  }

  async _pollLoop(gen, fail, ok) {
    fail = fail || ((code, reason) => this._lost(code, reason, gen));
    ok = ok || (() => {});
    let conflicts = 0;
    while (gen === this._gen) {
      const ac = new AbortController();
      this._abort = ac;
      const timer = setTimeout(() => ac.abort(), this._deadAfter());
      let res, body;
      try {
        res = await fetch(this._transportURL("longpoll"), {
          headers: this._headers({ "Realtime-Token": this._token, "Realtime-Ack": String(this._lastSeq) }),
          cache: "no-store", credentials: "same-origin", signal: ac.signal,
        });
        body = res.ok ? await res.json() : null;
      } catch (e) {
        clearTimeout(timer);
        if (gen === this._gen) fail(1006, "poll failed");
        return;
      }
      clearTimeout(timer);
      if (gen !== this._gen) return;
      if (res.status === 404) {
        this._gapReason = "unknown session"; // the next session reports it
        this._token = null;
        fail(1006, "session expired");
        return;
      }
      if (res.status === 409 && conflicts++ < 5) {
        // The server still holds our previous (aborted) poll; it lets go
        // within moments.
        await new Promise((r) => setTimeout(r, 100 * conflicts));
        continue;
      }
      if (!res.ok) {
        fail(res.status >= 500 || res.status === 409 ? 1006 : 1008, "poll: HTTP " + res.status);
        return;
      }
      conflicts = 0;
      ok();
      if (body.gap) this._gap(body.gap);
      for (const m of body.messages || []) {
        if (m.seq <= this._lastSeq) continue;
        this._lastSeq = m.seq;
        this._emit("message", { data: m.type === "binary" ? fromBase64(m.data) : m.data, transport: "longpoll" });
        if (gen !== this._gen) return;
      }
      if (body.close) {
        this._token = null;
        fail(body.close.code, body.close.reason || "");
        return;
      }
    }
  }

  // _resume reattaches to the session on its transport. SSE falls back to
  // long-polling on the same session when the stream does not flow.
  async _resume(gen) {
    if (this.transport === "sse") {
      try {
        await this._openSSE(gen, true);
        return;
      } catch (e) {
        if (gen !== this._gen) return;
        if (e instanceof Refused || !(e.message || "").includes("firstEventTimeout")) throw e;
        this._emit("error", { message: "sse: " + e.message, transport: "sse" });
        this._blocked.add("sse");
        this.transport = "longpoll";
      }
    }
    await this._openLP(gen, true);
  }

  // ---- sending ----

  /**
   * send queues data (a string, ArrayBuffer, typed array or Blob) and
   * sends it as soon as a transport is open, in order. Messages sent while
   * reconnecting wait in a queue of at most maxQueue messages; beyond it
   * send throws. After close it throws InvalidStateError, as WebSocket does.
   */
  send(data) {
    if (this.state === "closing" || this.state === "closed") {
      throw new DOMException("rtkit: the connection is closed", "InvalidStateError");
    }
    if (this.state === "open" && this.transport === "websocket" && this._ws && this._queue.length === 0) {
      this._ws.send(data);
      return;
    }
    if (this._queue.length >= this.options.maxQueue) {
      throw new DOMException("rtkit: send queue full (" + this.options.maxQueue + " messages)", "QuotaExceededError");
    }
    this._queue.push({ data, seq: 0, attempts: 0 });
    if (this.state === "open") this._flush();
  }

  _flush() {
    if (this.state !== "open" && this.state !== "closing") return;
    if (this.transport === "websocket") {
      while (this._queue.length && this._ws && this._ws.readyState === WebSocket.OPEN) {
        this._ws.send(this._queue.shift().data);
      }
      return;
    }
    if (!this._pumping) this._pump();
  }

  // _pump POSTs queued messages one at a time, each with its Realtime-Seq,
  // so that the server delivers each exactly once and in order however
  // often a POST is retried. What each answer means is PROTOCOL.md's table
  // "What ends, what reconnects": 2xx delivered; 404 resend on the next
  // session; 429 retry after Retry-After; 5xx, a network error or a
  // timeout (requestTimeout) retry after the backoff; any other 4xx
  // refused, reported with a "refused" event and never sent again.
  async _pump() {
    this._pumping = true;
    try {
      while (this._queue.length && this._token && (this.state === "open" || this.state === "closing")) {
        const m = this._queue[0];
        const token = this._token;
        if (!m.seq) m.seq = ++this._sendSeq;
        const headers = this._headers({ "Realtime-Token": token, "Realtime-Seq": String(m.seq) });
        headers["Content-Type"] = isBinary(m.data) ? "application/octet-stream" : "text/plain; charset=utf-8";
        const ac = new AbortController();
        this._post = ac;
        let res = null;
        try {
          res = await fetch(this.url, {
            method: "POST", headers, body: m.data, cache: "no-store", credentials: "same-origin",
            signal: timeoutSignal(this.options.requestTimeout, ac.signal),
          });
          await res.arrayBuffer().catch(() => {}); // frees the connection
        } catch (e) {
          res = null;
        } finally {
          if (this._post === ac) this._post = null;
        }
        const status = res ? res.status : 0;
        if (status >= 200 && status < 300) {
          // Delivered, even when the session ended meanwhile (the handler
          // may have closed it in answer): never send it again.
          this._unqueue(m);
          continue;
        }
        if (token !== this._token) continue; // a new session renumbered the queue
        if (status === 404) {
          // The session is gone (server restart, expiry): the message did
          // not arrive. Keep it for the next session.
          this._lost(1006, "session lost", this._gen);
          return;
        }
        if (status === 429) {
          // The server's inbox is full: nothing was accepted. The same
          // message, with the same seq, goes again after Retry-After; the
          // session and the messages behind it stay as they are.
          await this._pause(retryAfter(res.headers.get("Retry-After")));
          continue;
        }
        if (status >= 400 && status < 500) {
          // Refused for good (400 malformed, 401/403 credentials, 409,
          // 413 too large): tell the page, go on with the next. The server
          // accepted nothing, so the next message takes this seq: a hole
          // would hold every later one back.
          this._unqueue(m);
          if (m.seq === this._sendSeq) this._sendSeq--;
          this._emit("refused", { data: m.data, status, message: "send: HTTP " + status, transport: this.transport });
          continue;
        }
        // Network error, timeout, 5xx: the same seq again after a pause.
        m.attempts++;
        await this._pause(this._delay(m.attempts));
      }
    } finally {
      this._pumping = false;
      if (this._closeReq && this.state === "closing") this._sendClose();
    }
  }

  _unqueue(m) {
    const i = this._queue.indexOf(m);
    if (i >= 0) this._queue.splice(i, 1);
  }

  // _delay is the backoff before attempt n (from 1): uniform in the upper
  // half of min(maxDelay, minDelay·2^(n-1)), "equal jitter".
  _delay(n) {
    const base = Math.min(this.options.maxDelay, this.options.minDelay * 2 ** Math.min(n - 1, 30));
    return base / 2 + Math.random() * (base / 2);
  }

  // _pause resolves after ms, or earlier when _wakePump is called (the
  // client closed or the page went away).
  _pause(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this._wake === done) this._wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._wake = done;
    });
  }

  _wakePump() {
    if (this._wake) this._wake();
  }

  // ---- closing ----

  /**
   * close closes the connection with code (1000 or 3000–4999, default 1000)
   * and reason; messages already queued are sent first when a transport is
   * open. No reconnect follows.
   */
  close(code = 1000, reason = "") {
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException("rtkit: close code must be 1000 or 3000-4999", "InvalidAccessError");
    }
    if (this.state === "closing" || this.state === "closed") return;
    if (this.state !== "open") {
      // Connecting or reconnecting: a session being resumed is still alive
      // on the server until told, and so is one whose open request is in
      // flight: that request is left to finish, then its session deleted.
      if (this._token && isSession(this.transport)) this._deleteSession(this._token, code, reason);
      else if (this._opening && this._opening.gen === this._gen) {
        this._opening.closeWith = { code, reason };
        if (this._abort === this._opening.ac) this._abort = null;
      }
      this._opening = null;
      this._finish(code, reason, false);
      return;
    }
    this._closeReq = { code, reason };
    this._setState("closing");
    if (this.transport === "websocket" && this._ws) {
      this._flush();
      this._ws.close(code, reason);
      return;
    }
    if (!this._pumping) this._sendClose();
  }

  async _sendClose() {
    const { code, reason } = this._closeReq;
    const token = this._token;
    if (this._queue.length && token) { this._pump(); return; }
    this._gen++; // stop reading; the DELETE decides
    this._closeTransport();
    if (token) await this._deleteSession(token, code, reason);
    this._finish(code, reason, true);
  }

  // _deleteSession ends the session on the server. keepalive lets the
  // request outlive the page (pagehide); the token stays in a header.
  async _deleteSession(token, code, reason) {
    try {
      await fetch(this.url, {
        method: "DELETE",
        headers: this._headers({ "Realtime-Token": token, "Content-Type": "application/json" }),
        body: JSON.stringify({ code, reason }), credentials: "same-origin", keepalive: true,
        signal: timeoutSignal(this.options.requestTimeout),
      });
    } catch (e) { /* the session expires by itself */ }
  }

  // _pageHidden ends an SSE or long-poll session when the page goes away
  // (closed, navigated, or put in the back/forward cache), so that the
  // server does not wait out the resume window. A WebSocket the browser
  // closes itself when the page is unloaded (1001); a page put in the
  // back/forward cache may keep its socket open, frozen, so the client
  // closes it then, with 1000 "page closed" (scripts may not send 1001).
  _pageHidden(e) {
    if (e && e.persisted && this.transport === "websocket" && this._ws && this.state === "open") {
      this._gen++; // the socket's close is not a drop to recover from
      const ws = this._ws;
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      this._clearTimers();
      try { ws.close(1000, "page closed"); } catch (err) { /* already closed */ }
      this._hidden = true;
      this._setState("reconnecting");
      return;
    }
    const token = this._token;
    if (this.state === "closed" || !token || !isSession(this.transport)) return;
    if (this.state === "closing" && this._closeReq) {
      // Our own close is under way: make sure it reaches the server.
      const { code, reason } = this._closeReq;
      this._deleteSession(token, code, reason);
      this._finish(code, reason, true);
      return;
    }
    this._gen++; // the aborted stream or poll is not a drop to recover from
    this._clearTimers();
    this._closeTransport();
    this._token = null; // the queue is renumbered on the next session
    this._wakePump();
    this._deleteSession(token, 1001, "page closed");
    this._hidden = true;
    this._setState("reconnecting");
  }

  // _pageShown reconnects a page restored from the back/forward cache
  // whose session pagehide ended.
  _pageShown(e) {
    if (!e.persisted || !this._hidden || this.state === "closed") return;
    this._hidden = false;
    this._connect();
  }
}

/** connect returns a new RealtimeClient for url. */
export function connect(url, options) {
  return new RealtimeClient(url, options);
}
