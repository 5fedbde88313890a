package realtime

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

type connState int

const (
	stateNew     connState = iota // admitted, Open not called yet
	stateOpen                     // Open called, messages flow
	stateClosing                  // close requested: no more sends, queue flushing
	stateClosed                   // wire ended: Close runs or has run
)

// Conn is one connection of a route, on any transport. Its methods are safe
// for concurrent use.
//
// A connection's data path has three roles, each held by at most one
// goroutine at a time (see send.go and dispatch.go):
//
//   - the reader reads the peer's messages from the wire (for wires the
//     core reads, such as WebSocket) and hands them to the handler;
//   - the handler role runs callbacks (Open, Message, Every ticks, Close),
//     taking them in order from the inbox;
//   - the writer writes the send queue to the wire.
//
// One goroutine may hold several roles: a WebSocket connection's reader
// runs a quick callback itself and writes its reply, as a hand-written
// gorilla loop would. A callback that outlives slowCallback hands the
// reader role to a fresh goroutine, so reading (pongs, close frames,
// further messages into the inbox) never waits for a slow handler, and
// lets a writer goroutine write what it sends. Goroutines beyond the
// reader exist only while there is work.
type Conn struct {
	// Set by newConn and never changed.
	id     string
	kind   Kind
	req    *http.Request
	route  *Route
	opts   *Options
	ctx    connContext
	client string // the client key it counts under (Options.MaxConnsPerClient)
	name   string // the route's name in events and logs

	// Set before the first callback, then read and written by callbacks
	// only, which never overlap.
	inner Handler  // the per-connection handler of PerConn
	sess  *session // set for request-based transports (SSE, long-polling)

	logOnce sync.Once
	logger  *slog.Logger

	mu     sync.Mutex // guards every field below, and those of out and in
	state  connState
	opened bool // a wire was bound: Close runs when the connection ends
	cause  *CloseError
	wire   wireConn
	reader reader // the wire, when the core reads it; set before reading starts
	out    sendQueue
	in     inbox
	timers map[*ticker]struct{}
	done   chan struct{} // made on first use; closed once ended
	over   bool          // the connection has fully ended
	since  time.Time     // when the wire was bound
	stats  connStats

	tasks   sync.WaitGroup // Go goroutines and topic catch-ups
	writers sync.WaitGroup // writer goroutines

	hooks  map[int]func() // run after the handler's Close: see onClose
	hookID int
}

// connStats counts a connection's traffic, for its end's event and log
// line; guarded by Conn.mu.
type connStats struct {
	in, inBytes, out, outBytes int64
}

func newConn(rt *Route, r *http.Request, kind Kind) *Conn {
	// The connection may outlive the request's handler (a hijacked
	// WebSocket, a session): keep the request's values, not its
	// cancellation; the connection's end cancels ctx.
	return &Conn{
		ctx:   connContext{values: r.Context()},
		id:    rand.Text(),
		name:  rt.nameOf(r),
		kind:  kind,
		req:   r,
		route: rt,
		opts:  &rt.opts,
	}
}

// ID returns the connection's identifier: unique, random and public. It is
// not a credential; transports that need one issue a separate secret.
func (c *Conn) ID() string { return c.id }

// Transport returns the kind of transport serving the connection.
func (c *Conn) Transport() Kind { return c.kind }

// Request returns the request that opened the connection: its headers,
// query and context. It must not be modified.
func (c *Conn) Request() *http.Request { return c.req }

// Context returns a context that is cancelled as soon as the connection
// starts closing, whoever closes it: the peer leaving (a close frame, a
// dropped network, a DELETE, a session not resumed in time), the handler,
// the overflow policy or a shutdown. It is cancelled even while a
// callback runs, so pass it to slow work started in a callback (an agent
// call, a query) and that work stops when the user goes. It carries the
// values of the opening request's context, among them those middleware
// set (rtgin copies gin's c.Set values there).
func (c *Conn) Context() context.Context { return &c.ctx }

// Value returns the value stored under key in the opening request's context,
// such as a user id set by authentication middleware, or nil.
func (c *Conn) Value(key any) any { return c.ctx.Value(key) }

// Done returns a channel that is closed when the connection has fully ended:
// its handler's Close has returned and its goroutines have stopped.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.over {
			close(c.done)
		}
	}
	return c.done
}

// markDone closes Done.
func (c *Conn) markDone() {
	c.mu.Lock()
	c.over = true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// Logger returns a logger that carries the connection id, route and
// transport: the route as events name it (Options.Name, else the pattern
// it was mounted with), or its path where neither is known.
func (c *Conn) Logger() *slog.Logger {
	c.logOnce.Do(func() {
		c.logger = c.opts.Logger.With("conn", c.id, "route", c.logRoute(), "transport", string(c.kind))
	})
	return c.logger
}

// logRoute is the route in c's log lines.
func (c *Conn) logRoute() string { return cmp.Or(c.name, c.req.URL.Path) }

// Send queues m for the peer and returns without waiting for it to be
// written; messages are written in the order they were queued, promptly,
// whatever callback runs. It returns ErrClosed once the connection is
// closing. When the queue is full, that is when the peer reads slower than
// the handler sends, it applies Options.Overflow: by default the
// connection is closed and Send returns ErrQueueFull. Send blocks only
// under OverflowBlock, and then at most Options.WriteTimeout.
func (c *Conn) Send(m Message) error {
	if m.Type != TextMessage && m.Type != BinaryMessage {
		return fmt.Errorf("realtime: invalid message type %d", int(m.Type))
	}
	return c.send(m, c.opts.Overflow)
}

// SendText sends s as a text message.
func (c *Conn) SendText(s string) error { return c.Send(Text(s)) }

// SendBinary sends b as a binary message.
func (c *Conn) SendBinary(b []byte) error { return c.Send(Binary(b)) }

// SendJSON sends the JSON encoding of v as a text message.
func (c *Conn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(Message{Type: TextMessage, Data: b})
}

// Close starts closing the connection with the given close code and reason:
// messages already queued are written, then the peer is told the code and
// reason. Close does not wait for the handler's Close; Done does. Before
// Close returns, the connection's context is cancelled and its Every tickers
// are stopped. Close returns ErrClosed if the connection was already
// closing, and an error for a code that may not be sent (such as 1006).
func (c *Conn) Close(code int, reason string) error {
	if !protocol.ValidCloseCode(code) {
		return fmt.Errorf("realtime: invalid close code %d", code)
	}
	return c.close(&CloseError{Code: code, Reason: protocol.TruncReason(reason)}, true)
}

// Cause returns why the connection closed, or nil while it is open. The
// result is the error Handler.Close receives.
func (c *Conn) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause == nil {
		return nil
	}
	return c.cause
}

// Dropped returns how many messages were discarded before the peer got
// them: by the overflow policy, or, for SSE and long-polling, by a backlog
// that overflowed while the client was away (it is told of the gap).
func (c *Conn) Dropped() uint64 {
	c.mu.Lock()
	n := c.out.dropped
	c.mu.Unlock()
	if c.sess != nil {
		n += c.sess.dropped.Load()
	}
	return n
}

func (c *Conn) handler() Handler { return c.route.handler }

// protect calls f and turns a panic into a *PanicError.
func (c *Conn) protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// failure turns a handler's error into the cause of the close, and logs it
// unless the handler chose the close code itself.
func (c *Conn) failure(err error) *CloseError {
	var ce *CloseError
	if errors.As(err, &ce) && protocol.ValidCloseCode(ce.Code) {
		return &CloseError{Code: ce.Code, Reason: protocol.TruncReason(ce.Reason), Err: ce.Err}
	}
	c.observe(Event{Kind: EventError, Err: err})
	var pe *PanicError
	if errors.As(err, &pe) {
		c.Logger().Error("realtime: handler panic", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	} else {
		c.Logger().Error("realtime: handler error", "err", err)
	}
	return &CloseError{Code: CloseInternalError, Reason: "internal error", Err: err}
}

// asCloseError turns what a transport reported into a *CloseError.
func asCloseError(err error) *CloseError {
	var ce *CloseError
	switch {
	case err == nil:
		return &CloseError{Code: CloseNormal}
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, ErrPingTimeout):
		return &CloseError{Code: CloseAbnormal, Reason: "ping timeout", Err: err}
	case errors.Is(err, ErrReadLimit):
		return &CloseError{Code: CloseTooBig, Reason: "message too big", Err: err}
	}
	return &CloseError{Code: CloseAbnormal, Reason: "connection lost", Err: err}
}

// track registers a running task unless the connection has ended.
func (c *Conn) track() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosed {
		return false
	}
	c.tasks.Add(1)
	return true
}

// onClose registers f to run once the connection has closed, after the
// handler's Close, and returns a function that unregisters it. If the
// connection has already closed, f runs at once.
func (c *Conn) onClose(f func()) (remove func()) {
	c.mu.Lock()
	if c.state == stateClosed && c.hooks == nil {
		c.mu.Unlock()
		f()
		return func() {}
	}
	if c.hooks == nil {
		c.hooks = map[int]func(){}
	}
	c.hookID++
	id := c.hookID
	c.hooks[id] = f
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.hooks, id)
		c.mu.Unlock()
	}
}
