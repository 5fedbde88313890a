package realtime

import (
	"context"
	"log/slog"
)

// A connection is admitted (Route.admit), opened with a wire (open, start
// or startSession), closed (close: by the handler, the overflow policy, a
// failed write or a shutdown) and finished (finish: once its wire has
// ended). finish runs exactly once per opened connection and is the only
// place the handler's Close is called.

// bindLocked binds the wire and marks the connection open.
func (c *Conn) bindLocked(w wireConn) {
	c.wire = w
	if c.state == stateNew { // Shutdown may have closed it already
		c.state = stateOpen
	}
	c.opened = true
	c.since = c.opts.Clock.Now()
}

// open binds w and runs the handler's Open on the calling goroutine.
func (c *Conn) open(w wireConn) {
	c.mu.Lock()
	c.bindLocked(w)
	c.in.busy = true // nothing else can hold the role before Open
	c.mu.Unlock()
	c.observe(Event{Kind: EventOpen})
	c.run(job{open: true})
	c.drain(false)
}

// start binds r, a wire the core reads, and runs the connection on a
// goroutine of its own: Open, then the read loop.
func (c *Conn) start(r reader) {
	c.mu.Lock()
	c.bindLocked(r)
	c.reader = r
	c.in.busy = true
	c.in.readerInline = true // Open runs on the reader's goroutine
	c.mu.Unlock()
	c.observe(Event{Kind: EventOpen})
	go func() {
		c.run(job{open: true})
		if c.drain(true) {
			c.readLoop()
		}
	}()
}

// startSession binds a session and runs Open on a goroutine of its own,
// so that the request that opened the session answers at once however
// long Open takes; messages posted meanwhile wait in the inbox.
func (c *Conn) startSession(s *session) {
	c.mu.Lock()
	c.bindLocked(s)
	c.in.busy = true
	c.mu.Unlock()
	c.observe(Event{Kind: EventOpen})
	go func() {
		c.run(job{open: true})
		c.drain(false)
	}()
}

// close records ce as the cause, cancels the context and stops timers,
// and either flushes the queue before telling the peer (graceful) or tells
// it now. An abrupt close also ends a connection whose graceful close is
// pending: a write that fails after Close must not leave it hanging.
func (c *Conn) close(ce *CloseError, graceful bool) error {
	c.mu.Lock()
	first := c.state < stateClosing
	if first {
		c.state = stateClosing
		c.cause = ce
		c.stopTimersLocked()
		c.wakeSendersLocked()
		c.wakeRoomLocked()
	} else if graceful || c.out.broken {
		c.mu.Unlock()
		return ErrClosed
	} else if c.out.closeReq != nil {
		// The graceful close never reached the peer: say why.
		c.cause = ce
	}
	w := c.wire
	if graceful {
		c.out.closeReq = ce
		c.kickLocked()
		c.mu.Unlock()
		c.ctx.cancel()
		return nil
	}
	c.out.broken = true
	c.out.queue, c.out.bytes, c.out.closeReq = nil, 0, nil
	c.mu.Unlock()
	c.ctx.cancel()
	if w != nil {
		w.Close(ce.Code, ce.Reason)
	}
	if !first {
		return ErrClosed
	}
	return nil
}

// finish ends the connection once its wire has ended, with err as the
// cause when nothing closed it before: it cancels the context at once,
// releases the wire, waits for the connection's goroutines and the
// running callback, runs the handler's Close, and closes Done.
func (c *Conn) finish(err error) {
	if c.end(err) {
		c.complete()
	}
}

// end is the part of finish that does not wait: it marks the connection
// closed, cancels its context and releases the wire. It reports whether
// this call ended the connection; then the caller must call complete.
func (c *Conn) end(err error) bool {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return false
	}
	if c.cause == nil {
		c.cause = asCloseError(err)
	}
	c.state = stateClosed
	c.out.broken = true
	c.out.queue, c.out.bytes, c.out.closeReq = nil, 0, nil
	c.stopTimersLocked()
	c.wakeSendersLocked()
	c.wakeRoomLocked()
	w := c.wire
	c.mu.Unlock()
	c.ctx.cancel()
	if w != nil {
		w.Close(c.cause.Code, c.cause.Reason) // the read loop has ended: this releases the wire
	}
	return true
}

// complete is the part of finish that waits: for the connection's
// goroutines and running callback, then the handler's Close, then Done.
func (c *Conn) complete() {
	c.tasks.Wait()
	c.mu.Lock()
	opened := c.opened
	c.mu.Unlock()
	if opened {
		c.acquire()
		if err := c.protect(func() error { c.handler().Close(c, c.cause); return nil }); err != nil {
			c.failure(err)
		}
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
	c.ended()
	c.markDone()
}

// abort gives back a connection that never opened.
func (c *Conn) abort() {
	c.mu.Lock()
	c.state = stateClosed
	c.mu.Unlock()
	c.ctx.cancel()
	c.route.release(c)
	c.markDone()
}

// ended reports the end of an opened connection: its event, and the Info
// line unless Options.QuietClose.
func (c *Conn) ended() {
	c.mu.Lock()
	opened, st := c.opened, c.stats
	d := c.opts.Clock.Now().Sub(c.since)
	c.mu.Unlock()
	if !opened {
		return
	}
	c.observe(Event{Kind: EventClose, Code: c.cause.Code, Duration: d, Err: c.cause})
	l := c.opts.Logger
	if c.opts.QuietClose || !l.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "realtime: connection closed",
		slog.String("conn", c.id), slog.String("route", c.logRoute()), slog.String("transport", string(c.kind)),
		slog.Int("code", c.cause.Code), slog.String("reason", c.cause.Reason),
		slog.Duration("duration", d),
		slog.Int64("msgs_in", st.in), slog.Int64("bytes_in", st.inBytes),
		slog.Int64("msgs_out", st.out), slog.Int64("bytes_out", st.outBytes))
}
