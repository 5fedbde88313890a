package realtime

import (
	"context"
	"time"
)

// ticker is one Every registration.
type ticker struct {
	c       *Conn
	d       time.Duration
	f       func()
	timer   Timer
	stopped bool // guarded by c.mu
}

// Every calls f every d for as long as the connection lives, like the
// seed's setInterval, without the need to clean up in Close: the ticker
// stops when the connection starts closing, before Close returns. The
// returned function stops it earlier.
//
// f runs like a handler callback: never at the same time as Open, Message,
// Close or another tick of this connection, and a panic in f closes the
// connection. The next tick is scheduled d after f returns. Time comes from
// Options.Clock, so tests drive it with a fake clock.
func (c *Conn) Every(d time.Duration, f func()) (stop func()) {
	t := &ticker{c: c, d: d, f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= stateClosing || d <= 0 {
		return func() {}
	}
	if c.timers == nil {
		c.timers = make(map[*ticker]struct{})
	}
	c.timers[t] = struct{}{}
	t.timer = c.opts.Clock.AfterFunc(d, t.fire)
	return t.stop
}

// fire hands the tick to the handler role: at once on the timer's
// goroutine when the handler is idle, else queued behind the running
// callback, so that a tick never blocks a goroutine while it waits.
func (t *ticker) fire() {
	c := t.c
	c.mu.Lock()
	if t.stopped || c.state >= stateClosing {
		c.mu.Unlock()
		return
	}
	if c.in.busy {
		c.pushLocked(job{tick: t})
		c.mu.Unlock()
		return
	}
	c.in.busy = true
	c.mu.Unlock()
	c.run(job{tick: t})
	c.drain(false)
}

// run calls f unless the ticker was stopped, then schedules the next tick.
func (t *ticker) run() error {
	c := t.c
	c.mu.Lock()
	stopped := t.stopped
	c.mu.Unlock()
	if stopped {
		return nil
	}
	defer func() {
		c.mu.Lock()
		if !t.stopped {
			t.timer = c.opts.Clock.AfterFunc(t.d, t.fire)
		}
		c.mu.Unlock()
	}()
	t.f()
	return nil
}

func (t *ticker) stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.stopLocked()
	delete(t.c.timers, t)
}

func (t *ticker) stopLocked() {
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
}

func (c *Conn) stopTimersLocked() {
	for t := range c.timers {
		t.stopLocked()
	}
	c.timers = nil
}

// Go runs f in a goroutine bound to the connection: f receives the
// connection's context, which is cancelled when the connection starts
// closing, and must return soon after. The handler's Close is called only
// after every such goroutine has returned, so none outlives its connection.
//
// A non-nil error from f, returned while the connection is open, closes the
// connection as a handler error does; so does a panic. Go does nothing on a
// connection that has ended.
func (c *Conn) Go(f func(ctx context.Context) error) {
	if !c.track() {
		return
	}
	go func() {
		defer c.tasks.Done()
		err := c.protect(func() error { return f(&c.ctx) })
		if err != nil && c.ctx.Err() == nil {
			c.close(c.failure(err), true)
		}
	}()
}
