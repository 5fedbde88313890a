package realtime

import (
	"context"
	"sync"
	"time"
)

// connContext is a connection's context, part of the Conn itself rather
// than a context.WithCancel of its own (one allocation and a few hundred
// bytes less per connection): the values of the opening request's
// context, and a cancellation that the connection's end triggers. It
// implements the AfterFunc method the context package looks for, so a
// context derived from it (context.WithTimeout(c.Context(), d), as an
// agent call makes) is cancelled with it without a goroutine to watch it.
type connContext struct {
	values context.Context // the opening request's context: values only

	mu    sync.Mutex
	done  chan struct{} // made on first use; closed by cancel
	err   error
	after map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

var _ context.Context = (*connContext)(nil)

func (x *connContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (x *connContext) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	return x.done
}

func (x *connContext) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *connContext) Value(key any) any { return x.values.Value(key) }

// AfterFunc arranges for f to run in its own goroutine once the context
// is cancelled, as context.AfterFunc does; the context package calls it
// for the contexts derived from this one.
func (x *connContext) AfterFunc(f func()) (stop func() bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f}
	if x.after == nil {
		x.after = map[*afterFunc]struct{}{}
	}
	x.after[a] = struct{}{}
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		_, ok := x.after[a]
		delete(x.after, a)
		return ok
	}
}

// cancel ends the context: Done closes, Err is context.Canceled, and the
// functions registered with AfterFunc start.
func (x *connContext) cancel() {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
	after := x.after
	x.after = nil
	x.mu.Unlock()
	for a := range after {
		go a.f()
	}
}

// String names the context in a panic or a log line.
func (x *connContext) String() string { return "realtime.Conn.Context" }
