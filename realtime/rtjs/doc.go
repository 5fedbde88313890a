// Package rtjs serves rtkit's browser client: rtkit.js, a dependency-free
// ES module that speaks the wire protocol of transports/PROTOCOL.md, its
// TypeScript declarations, and react.js, a React hook over it.
//
// Mount it next to a route and import it from a page:
//
//	mux.Handle(rtjs.Path, rtjs.Handler())
//	mux.Handle("/echo", realtime.NewRoute(h, &realtime.Options{
//		Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
//	}))
//
//	<script type="module">
//	import {RealtimeClient} from "/rtkit/rtkit.js";
//	const c = new RealtimeClient("/echo", {token});
//	c.onmessage = (e) => show(e.data); // a string, or an ArrayBuffer for binary
//	c.onstatechange = () => status(c.state, c.transport);
//	c.send("hello");                   // queued until open
//	</script>
//
// # The client
//
// RealtimeClient looks like the browser's WebSocket: onopen, onmessage,
// onclose (code, reason, wasClean), onerror, send(data), close(code,
// reason), readyState and bufferedAmount, and it is an EventTarget. It
// adds onstatechange (state "connecting", "open", "reconnecting",
// "closing" or "closed"), ongap (messages the server could no longer
// replay), and transport ("websocket", "sse" or "longpoll").
//
// It first asks the route (GET, JSON) which transports it allows and its
// pingInterval and pongTimeout, then tries them in the route's order,
// restricted to options.transports:
//
//   - WebSocket, with the subprotocols ["rtkit", "rtkit.bearer.<base64url
//     token>"] when options.token is set (a browser WebSocket cannot send
//     headers; realtime.BearerToken reads the entry). The client falls
//     back when the upgrade fails or is silent for upgradeTimeout.
//   - Server-Sent Events, read with fetch streaming and the module's own
//     text/event-stream parser rather than EventSource, because the
//     stream needs headers EventSource cannot send: "Authorization:
//     Bearer" and, when resuming, "Last-Event-ID: <token>.<seq>".
//     Messages go up by POST with Realtime-Token and Realtime-Seq. The
//     client falls back when a new stream's session event does not arrive
//     within firstEventTimeout: a buffering proxy holds it.
//   - Long-polling on the same session model, acknowledging with
//     Realtime-Ack.
//
// A transport that failed while a later one worked is remembered as
// blocked on this path and skipped on reconnects; one that failed while
// every later one failed too counts as the server being down, not as a
// proxy, so it is tried again.
//
// An open connection that drops reconnects with exponential backoff and
// jitter when it was closed with 1001, 1006, 1012, 1013 or 1014; any other
// code ends it (options.shouldReconnect replaces the policy).
//
// Sends while connecting or reconnecting wait in a bounded queue and go
// out in order once open. On SSE and long-polling they are POSTed one at a
// time, and a message leaves the queue only on 204: a POST that failed in
// flight is retried with the same Realtime-Seq, which the server delivers
// exactly once, and a message refused with 404 (the session died) is sent
// again on the next session. WebSocket has no delivery acknowledgement in
// the protocol: a message written to a socket the server was closing is
// lost, as with a bare WebSocket.
//
// A POST answered 429 (the server's inbox is full: its handler is behind)
// was not accepted. The client sends the same message with the same
// Realtime-Seq again after the response's Retry-After (at most 30 s),
// without reconnecting; the messages queued behind it wait their turn.
//
// Leaving the page ends an SSE or long-poll session at once. On pagehide
// (the tab closes, the page navigates away or enters the back/forward
// cache) the client sends the session's DELETE with {"code": 1001,
// "reason": "page closed"} using fetch's keepalive, which outlives the
// page; otherwise the server would see the client leave only when the
// session's resume window ran out, and work bound to the connection (an
// agent's answer, a job) would go on for nobody. close() called while
// connecting or reconnecting sends the same DELETE for the session being
// resumed. WebSocket needs nothing: the browser closes the socket. The
// client listens to pagehide rather than unload or beforeunload, which
// would keep the page out of the back/forward cache; a page restored from
// it (pageshow with persisted) connects again with a new session.
//
// The token never goes into a URL; every fetch carries it as
// "Authorization: Bearer", and a session's token travels in the
// Realtime-Token header, DELETEs included.
//
// # Defaults and why
//
// The defaults are the table "Timeouts and defaults" of
// transports/PROTOCOL.md, shared with the Go client (TestDefaultsMatchProtocol
// checks both), as is the reconnect policy (TestBehaviour runs each row):
//
//   - upgradeTimeout and firstEventTimeout 3000 ms: a WebSocket handshake
//     or a stream's first event takes well under a second even on slow
//     mobile links, while a proxy that swallows the upgrade or buffers the
//     stream leaves it waiting for minutes. A refused upgrade falls back
//     at once.
//   - requestTimeout 10000 ms on every POST and DELETE (the negotiation
//     and the long-poll open use upgradeTimeout): a hung POST is sent again
//     with the same seq rather than hold the queue.
//   - Reconnect delays from minDelay 500 ms, doubling to maxDelay 10 s,
//     each drawn uniformly from its upper half ("equal jitter").
//   - maxQueue 256 messages, as many as the server keeps for a session.
//   - maxEventSize 8 Mi characters: a larger SSE event ends the client with
//     1009. The parser scans each chunk once (linear time).
//   - A stream or poll that hears nothing for pingInterval+pongTimeout
//     (from negotiation; 25 s + 10 s by default) is dead. On WebSocket the
//     server's heartbeat (an empty binary frame on the rtkit subprotocol,
//     which the client swallows) does the same for a half-open socket.
//
// Close codes 1001, 1006, 1012, 1013 and 1014 reconnect; every other code
// ends, 1011 and 3000–4999 included. A POST refused for good (400, 401,
// 403, 409, 413) fires a "refused" event and is never sent again.
//
// # React
//
// react.js exports useRealtime(url, options), which returns {state,
// transport, lastMessage, send, close} and closes the client on unmount.
// It imports React from "react" (a peer dependency resolved by the page's
// import map or bundler) and ./rtkit.js. It is a thin wrapper over
// RealtimeClient; its tests run it in Chromium with React 19 from the
// lockfile (package.json, installed by npm ci; test tools only), in
// StrictMode, and with a minimal hooks runtime.
package rtjs
