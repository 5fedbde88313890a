// Package realtime is the core of rtkit: one Handler, written once, served
// over WebSocket, server-sent events or plain HTTP, chosen per route by
// configuration.
//
// A handler has three callbacks. Funcs adapts optional functions, like the
// seed's onOpen/onMessage/onClose, and PerConn builds a handler per
// connection so that its state lives in a closure. A Route serves it over
// the transports its Options list, as values; package transports has a
// preset for each row of the seed's use-case table:
//
//	echo := realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
//		var n int // per-connection state
//		return realtime.Funcs{
//			OnOpen: func(c *realtime.Conn) error {
//				c.Every(5*time.Second, func() { c.SendText("heartbeat") })
//				return nil
//			},
//			OnMessage: func(c *realtime.Conn, m realtime.Message) error {
//				n++
//				return c.Send(m)
//			},
//		}
//	})
//	o := transports.Messaging // WebSocket, then SSE, then long-polling
//	http.Handle("/echo", realtime.NewRoute(echo, &o))
//
// A Route is an http.Handler; package rtgin mounts it on gin, where gin
// middleware runs before the upgrade and its c.Set values reach
// Conn.Value. The transports are packages under transports/, each made
// with its own options (websocket.New(websocket.Options{Compression:
// true})). Package topics (realtime/topics) fans messages out with history
// and presence. Package realtimetest (under testing/) runs handlers with
// no network and a fake clock.
//
// # Lifecycle
//
// A route admits a connection (refusing it with 403 for a foreign origin
// and 503 beyond Options.MaxConns or after Shutdown), then calls Open,
// then Message for each message in order, then Close exactly once however
// the connection ends. Close receives a *CloseError: the code and reason
// sent or received (CloseAbnormal, 1006, when the network dropped) and the
// cause, which errors.Is matches against ErrPingTimeout, ErrReadLimit,
// ErrQueueFull, ErrServerClosed, ErrHandlerPanic and the handler's own
// errors.
//
// When a connection starts closing, from either side, its context is
// cancelled at once, even while a callback runs: a WebSocket close frame
// or a dropped TCP connection, an SSE or long-poll DELETE, a session not
// resumed within Options.ResumeWindow, the handler's Close, the overflow
// policy or a shutdown. Its Every tickers stop; the handler's Close runs
// after the running callback and every goroutine started with Conn.Go
// have returned. Conn.Done is closed when all of that is over.
// Route.Shutdown closes every connection with CloseGoingAway and waits,
// bounded by its context, for their handlers.
//
// A handler error or panic closes only its connection: the peer receives
// CloseInternalError ("internal error"; details are logged, not sent)
// unless the handler returned a *CloseError with a code of its choice.
//
// # Slow callbacks
//
// A callback may take as long as it needs, such as an agent call that
// streams its answer for minutes; pass it the connection's context so
// that it stops when the user leaves:
//
//	OnMessage: func(c *realtime.Conn, m realtime.Message) error {
//		for tok, err := range agent.Stream(c.Context(), m.Text()) {
//			if err != nil {
//				return err
//			}
//			c.SendText(tok) // written as it goes, not when the callback returns
//		}
//		return nil
//	}
//
// Meanwhile the connection lives on: the transport goes on reading
// (pongs, close frames), messages that arrive wait in a bounded inbox
// (Options.Inbox, Options.InboxBytes) and are handled in order once the
// callback returns, and what anyone sends is written at once. When the
// inbox is full the transport stops reading, so TCP slows the peer down,
// and SSE and long-poll POSTs are answered 429 with Retry-After; the
// pause never counts against the peer's keepalive. A POST is answered as
// soon as its message is in the inbox, never held for the callback. To
// act on a message while a long call runs (a Stop button), run the call
// with Conn.Go, which receives the same context, and return.
//
// # Concurrency
//
// A connection's callbacks (Open, Message, Close and its Every ticks) never
// run at the same time, so state that only they touch needs no lock.
// Callbacks of different connections run concurrently. Every Conn method is
// safe to call from any goroutine.
//
// Send never waits for the network: it queues the message on the
// connection's bounded send queue (Options.SendQueue messages,
// Options.SendQueueBytes bytes) and returns; the message is written
// promptly whatever callback runs. What happens when the queue is full,
// that is when the peer reads slower than the server sends, is
// Options.Overflow: by default the slow connection is closed with
// ClosePolicyViolation. Catch-ups (topic history, a resumed session) do
// not count as overflow: they stream at the pace the peer reads. Every
// write is bounded by Options.WriteTimeout.
//
// An idle connection costs one goroutine (the WebSocket reader) or none
// (a session). A callback runs on the reader's goroutine while it is
// quick; once it outlives a couple of milliseconds, reading moves to a new
// goroutine and a writer goroutine writes what the callback sends. Those
// goroutines exist only while there is work.
//
// # Transports and configuration
//
// Options.Transports lists what a route serves, in the order clients try
// them; the presets of package transports (Messaging, Collaboration,
// Dashboard, Progress, RequestResponse) name the seed's use cases. One URL
// takes a WebSocket upgrade, an SSE stream ("Accept: text/event-stream"),
// long-polls and plain POSTs; a plain GET answers which transports the
// route allows. SSE and long-polling are sessions: a secret token, bound
// to the client's origin and identity (Options.Identity), carries the
// client's messages by POST, and a bounded backlog (Options.ResumeBuffer)
// lets a dropped client resume without loss within Options.ResumeWindow,
// or tells it of a gap. The wire format is in transports/PROTOCOL.md.
// BearerToken reads a credential from a header or, for browsers'
// WebSockets, a subprotocol. Package wire is the API for writing a
// transport; users never import it.
//
// # Topics and clusters
//
// Package topics fans a message out to every connection subscribed to a
// topic, encoding it once per transport (see Shared), with a bounded
// history, so that a client that reconnects resumes after the last seq it
// saw, and presence. Topics run on a broker: in memory by default, NATS or
// Redis (packages under realtime/broker) to span processes. With
// Options.Relay set to such a broker, a session request that reaches a
// node which does not hold its session is forwarded to the one that does,
// so no sticky sessions are needed.
//
// # Logs
//
// Every line goes to Options.Logger (log/slog) with a constant message
// and stable keys, never a credential: neither a bearer token nor a
// session token appears in any line, at any level. Lines about one
// connection, the handler's own through Conn.Logger included, carry conn
// (its id), route and transport. The core writes:
//
//	Info  "realtime: connection closed"  conn route transport code reason duration msgs_in bytes_in msgs_out bytes_out
//	Error "realtime: handler error"      conn route transport err
//	Error "realtime: handler panic"      conn route transport panic stack
//	Debug "realtime: origin refused"     origin host
//	Warn  "realtime: relaying a request failed"   err
//	Error "realtime: serving relayed requests failed; this node cannot be reached by others"  err
//
// The close line is written once per opened connection, however it
// ended; Options.QuietClose turns it off. The transports write no lines
// of their own; package topics writes Warn lines about broker trouble
// with topic (and member, after, err). For counting rather than reading,
// see Observer.
//
// # Security
//
// By default a route accepts browser requests from its own origin only,
// reads messages of at most 64 KiB, queues at most 256 messages per
// connection and pings idle peers every 25 seconds. Connection ids are 128
// random bits from crypto/rand.
package realtime
