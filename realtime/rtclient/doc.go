// Package rtclient is the Go client of rtkit routes: one Conn API over
// WebSocket, Server-Sent Events (messages up by POST) and long-polling, as
// transports/PROTOCOL.md describes them.
//
// # Transports and fallback
//
// The client follows the "Client behaviour" tables of
// transports/PROTOCOL.md, as rtkit.js does: TestBehaviour runs every row.
//
// Dial first asks the route which transports it allows (the negotiation
// GET; Options.NoNegotiate skips it) and learns its ping interval, pong
// timeout and read limit. It then tries the transports in the route's
// order, among Options.Transports, and settles on the first that works:
//
//   - WebSocket fails when the upgrade is refused (any answer but 101),
//     blocked, or silent for Options.UpgradeTimeout;
//   - SSE fails when the stream does not open, or when its first event
//     (the session event) does not arrive within Options.FirstEventTimeout,
//     which is what a proxy that buffers streaming responses looks like;
//   - long-polling needs nothing but plain requests and responses.
//
// # Delivery
//
// Messages from the server are delivered by Receive in order, exactly once
// within one server connection. SSE and long-polling share a server
// session (a secret token and the sequence number of the last message
// received): when the network drops, the client resumes the session within
// the route's resume window, on either of the two transports, and receives
// what it missed, without duplicates. When the server could no longer
// supply some messages (a gap), Receive returns a *GapError, for which
// errors.Is(err, ErrGap) holds, and the connection goes on: call Receive
// again. Loss is never silent.
//
// WebSocket has no server session in the protocol: a WebSocket reconnect is
// a new connection on the server (its handler's Open runs again and
// messages sent while the network was down are lost). Receive reports it,
// like any reconnect that could not resume a session, as a *GapError with
// NewConnection set, so that the application can resubscribe or resume at
// its own level.
//
// Messages sent while the connection is reconnecting are queued (at most
// Options.SendQueue) and sent after the reconnect. On SSE and long-polling
// every POST carries Realtime-Seq, so a POST retried after a network error
// is delivered once. A message whose delivery was uncertain when the
// session was lost is sent again on the new server connection.
//
// # Reconnecting
//
// A dropped network, a keepalive timeout (nothing heard for the route's
// pingInterval+pongTimeout) and the close codes that Options.Reconnect
// accepts (by default 1001 going away, 1006 abnormal, 1012 service restart,
// 1013 try again later and 1014 bad gateway) make the client reconnect
// with exponential backoff and full jitter. Any other close code (1000,
// 1008, 1009, 1011, 3000–4999) is final: Receive returns the
// *realtime.CloseError. A POST answered 5xx, or lost, is sent again with
// the same Realtime-Seq after the backoff; one refused for good (400, 401,
// 403, 409, 413) is reported as a *RefusedError and never sent again.
//
// The context given to Dial is the connection's for its whole life: when
// it ends, while open or while reconnecting, the connection closes with
// 1001 and Receive returns a *realtime.CloseError whose Err is the
// context's cause.
//
// # Concurrency
//
// A Conn is safe for use by many goroutines: Send, Receive, State,
// Transport, Done and Close may be called at once from any number of
// them. Messages one goroutine sends keep their order; each received
// message goes to exactly one Receive. OnState calls never overlap.
//
// # Heartbeat
//
// On WebSocket the client offers the rtkit subprotocol; the server's
// empty binary heartbeat frames are swallowed, never returned by Receive.
//
// # Credentials
//
// Options.Token travels as "Authorization: Bearer" on every HTTP request and
// on the WebSocket handshake, never in the URL; the server reads it with
// realtime.BearerToken. The WebSocket handshake offers the subprotocol
// realtime.Subprotocol.
package rtclient
