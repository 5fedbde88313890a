package realtime

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
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
type Conn struct {
	id     string
	kind   Kind
	req    *http.Request
	route  *Route
	opts   *Options
	ctx    context.Context
	cancel context.CancelFunc
	inner  Handler  // the per-connection handler of PerConn
	sess   *session // set for request-based transports (SSE, long-polling)
	done   chan struct{}

	logOnce sync.Once
	logger  *slog.Logger

	cbMu sync.Mutex // serialises handler callbacks and Every ticks

	mu         sync.Mutex
	state      connState
	opened     bool
	cause      *CloseError
	wire       Wire
	queue      []Message
	spare      []Message // the other half of the double buffer
	queued     int       // bytes in queue
	writing    bool      // some goroutine holds the writer role
	broken     bool      // a write failed: nothing more is written
	inCallback bool      // a callback runs; its goroutine drains the queue after
	closeReq   *CloseError
	space      chan struct{} // closed when the writer takes a batch
	timers     map[*ticker]struct{}
	dropped    uint64

	tasks   sync.WaitGroup // Go goroutines and running ticks
	writers sync.WaitGroup // writer goroutines

	hooks  map[int]func() // run after the handler's Close: see onClose
	hookID int
}

func newConn(rt *Route, r *http.Request, kind Kind) *Conn {
	// The connection may outlive the request's handler (a hijacked
	// WebSocket, a session): keep the request's values, not its
	// cancellation; the connection's end cancels ctx.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	return &Conn{
		id:     rand.Text(),
		kind:   kind,
		req:    r,
		route:  rt,
		opts:   &rt.opts,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
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

// Context returns a context that is cancelled when the connection starts
// closing. It carries the values of the opening request's context, among
// them those middleware set (rtgin copies gin's c.Set values there).
func (c *Conn) Context() context.Context { return c.ctx }

// Value returns the value stored under key in the opening request's context,
// such as a user id set by authentication middleware, or nil.
func (c *Conn) Value(key any) any { return c.ctx.Value(key) }

// Done returns a channel that is closed when the connection has fully ended:
// its handler's Close has returned and its goroutines have stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Logger returns a logger that carries the connection id, route path and
// transport.
func (c *Conn) Logger() *slog.Logger {
	c.logOnce.Do(func() {
		c.logger = c.opts.Logger.With("conn", c.id, "route", c.req.URL.Path, "transport", string(c.kind))
	})
	return c.logger
}

// Send queues m for the peer and returns without waiting for it to be
// written; messages are written in the order they were queued. It returns
// ErrClosed once the connection is closing. When the queue is full, it
// applies Options.Overflow: by default the connection is closed and Send
// returns ErrQueueFull. Send blocks only under OverflowBlock, and then at
// most Options.WriteTimeout.
func (c *Conn) Send(m Message) error {
	if m.Type != TextMessage && m.Type != BinaryMessage {
		return fmt.Errorf("realtime: invalid message type %d", int(m.Type))
	}
	return c.send(m, c.opts.Overflow)
}

// send queues m under the overflow policy.
func (c *Conn) send(m Message, policy OverflowPolicy) error {
	var deadline Timer
	var expired chan struct{}
	c.mu.Lock()
	for {
		if c.state >= stateClosing {
			c.mu.Unlock()
			return ErrClosed
		}
		if len(c.queue) < c.opts.SendQueue && (len(c.queue) == 0 || c.queued+len(m.Data) <= c.opts.SendQueueBytes) {
			break
		}
		switch policy {
		case OverflowDropOldest:
			c.queued -= len(c.queue[0].Data)
			c.queue[0] = Message{}
			c.queue = c.queue[1:]
			c.dropped++
			continue
		case OverflowDropNewest:
			c.dropped++
			c.mu.Unlock()
			return ErrQueueFull
		case OverflowBlock:
			if expired == nil {
				expired = make(chan struct{})
				deadline = c.opts.Clock.AfterFunc(c.opts.WriteTimeout, func() { close(expired) })
				defer deadline.Stop()
			}
			if c.space == nil {
				c.space = make(chan struct{})
			}
			// Room comes only from a writer. During a callback
			// kickLocked leaves the writing to the callback's goroutine,
			// which may be this one, blocked here: start a writer now.
			if !c.writing && !c.broken && c.wire != nil {
				c.writing = true
				c.writers.Add(1)
				go c.writeLoop()
			}
			space := c.space
			c.mu.Unlock()
			select {
			case <-space:
			case <-expired:
				return ErrQueueFull
			}
			c.mu.Lock()
			continue
		default: // OverflowClose
			c.mu.Unlock()
			c.close(&CloseError{Code: ClosePolicyViolation, Reason: "send queue full", Err: ErrQueueFull}, false)
			return ErrQueueFull
		}
	}
	c.queue = append(c.queue, m)
	c.queued += len(m.Data)
	c.kickLocked()
	c.mu.Unlock()
	return nil
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
	if !validCloseCode(code) {
		return fmt.Errorf("realtime: invalid close code %d", code)
	}
	return c.close(&CloseError{Code: code, Reason: truncReason(reason)}, true)
}

// close records ce as the cause, stops timers and the context, and either
// flushes the queue before telling the peer (graceful) or tells it now.
func (c *Conn) close(ce *CloseError, graceful bool) error {
	c.mu.Lock()
	if c.state >= stateClosing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state = stateClosing
	c.cause = ce
	c.stopTimersLocked()
	c.wakeSendersLocked()
	w := c.wire
	if graceful {
		c.closeReq = ce
		c.kickLocked()
	} else {
		c.broken = true
		c.queue, c.queued = nil, 0
	}
	c.mu.Unlock()
	c.cancel()
	if !graceful && w != nil {
		w.Close(ce.Code, ce.Reason)
	}
	return nil
}

// wakeSendersLocked releases Sends blocked under OverflowBlock.
func (c *Conn) wakeSendersLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// kickLocked starts a writer goroutine when there is something to write and
// nobody to write it. While a callback runs, its goroutine writes after it
// returns instead, which saves a goroutine switch per reply.
func (c *Conn) kickLocked() {
	if c.writing || c.inCallback || c.broken || c.wire == nil {
		return
	}
	if len(c.queue) == 0 && c.closeReq == nil {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

func (c *Conn) writeLoop() {
	defer c.writers.Done()
	c.flush(-1)
}

// flush writes queued messages, then the pending close, for at most
// maxRounds batches (negative: no bound) and hands what remains to a writer
// goroutine. The caller holds the writer role.
func (c *Conn) flush(maxRounds int) {
	for round := 0; ; round++ {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			ce := c.closeReq
			c.closeReq = nil
			w := c.wire
			c.mu.Unlock()
			if ce != nil {
				w.Close(ce.Code, ce.Reason)
			}
			return
		}
		if maxRounds >= 0 && round >= maxRounds {
			c.writers.Add(1)
			c.mu.Unlock()
			go c.writeLoop()
			return
		}
		batch := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.queued = 0
		c.wakeSendersLocked()
		w := c.wire
		c.mu.Unlock()

		err := w.Write(batch)
		clear(batch)

		c.mu.Lock()
		c.spare = batch[:0]
		if err != nil {
			c.writing = false
			c.mu.Unlock()
			ce := &CloseError{Code: CloseAbnormal, Reason: "write failed", Err: err}
			switch {
			case errors.Is(err, ErrWriteTimeout):
				ce.Reason = "write timeout"
			case errors.Is(err, ErrQueueFull):
				ce.Code, ce.Reason = ClosePolicyViolation, "send queue full"
			}
			c.close(ce, false)
			return
		}
		c.mu.Unlock()
	}
}

// dispatch runs a handler callback: one at a time per connection, with
// panics recovered. Afterwards the calling goroutine writes what the
// callback queued, and a failure closes the connection.
func (c *Conn) dispatch(f func() error, needOpen bool) {
	c.cbMu.Lock()
	c.mu.Lock()
	if needOpen && c.state != stateOpen {
		c.mu.Unlock()
		c.cbMu.Unlock()
		return
	}
	c.inCallback = true
	c.mu.Unlock()

	err := c.protect(f)
	if err != nil {
		// Still in the callback, so the close is written below, on this
		// goroutine, like any close the callback asked for.
		c.close(c.failure(err), true)
	}

	c.mu.Lock()
	c.inCallback = false
	c.mu.Unlock()
	c.cbMu.Unlock()
	c.mu.Lock()
	drain := !c.writing && !c.broken && c.wire != nil && (len(c.queue) > 0 || c.closeReq != nil)
	if drain {
		c.writing = true
	}
	c.mu.Unlock()
	if drain {
		c.flush(1)
	}
}

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
	if errors.As(err, &ce) && validCloseCode(ce.Code) {
		return &CloseError{Code: ce.Code, Reason: truncReason(ce.Reason), Err: ce.Err}
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		c.Logger().Error("realtime: handler panic", "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	} else {
		c.Logger().Error("realtime: handler error", "err", err)
	}
	return &CloseError{Code: CloseInternalError, Reason: "internal error", Err: err}
}

func (c *Conn) handler() Handler { return c.route.handler }

// open binds the wire and runs the handler's Open.
func (c *Conn) open(w Wire) {
	c.mu.Lock()
	c.wire = w
	if c.state == stateNew { // Shutdown may have closed it already
		c.state = stateOpen
	}
	c.opened = true
	c.mu.Unlock()
	c.dispatch(func() error { return c.handler().Open(c) }, false)
}

// receive runs the handler's Message, unless the connection is closing.
func (c *Conn) receive(m Message) {
	c.dispatch(func() error { return c.handler().Message(c, m) }, true)
}

// finish ends the connection once the transport's wire has ended.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if c.cause == nil {
		c.cause = asCloseError(err)
	}
	c.state = stateClosed
	c.broken = true
	c.queue, c.queued = nil, 0
	c.stopTimersLocked()
	c.wakeSendersLocked()
	opened := c.opened
	w := c.wire
	c.mu.Unlock()
	c.cancel()
	if w != nil {
		w.Close(c.cause.Code, c.cause.Reason) // the read loop has ended: this releases the wire
	}

	c.tasks.Wait()
	if opened {
		c.cbMu.Lock()
		if err := c.protect(func() error { c.handler().Close(c, c.cause); return nil }); err != nil {
			c.failure(err)
		}
		c.cbMu.Unlock()
	}
	c.writers.Wait()
	c.mu.Lock()
	hooks := c.hooks
	c.hooks = nil
	c.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	c.route.release(c)
	c.Logger().Debug("realtime: closed", "code", c.cause.Code, "reason", c.cause.Reason)
	close(c.done)
}

// abort gives back a connection that never opened.
func (c *Conn) abort() {
	c.mu.Lock()
	c.state = stateClosed
	c.mu.Unlock()
	c.cancel()
	c.route.release(c)
	close(c.done)
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

// Dropped returns how many messages the overflow policy discarded.
func (c *Conn) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
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
