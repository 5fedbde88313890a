package realtime

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// tryWire is a chanWire that can be tried: TryWrite takes what fits in
// out without waiting and keeps the rest (all of it while hold is set),
// and Write sends what it kept first.
type tryWire struct {
	*chanWire
	hold atomic.Bool // TryWrite writes nothing

	mu   sync.Mutex
	kept []Message

	tries, writes atomic.Int32
	busy          atomic.Int32 // TryWrite and Write calls in progress
	overlap       atomic.Bool  // two of them ever overlapped
}

func newTryWire(out int) *tryWire {
	return &tryWire{chanWire: &chanWire{in: make(chan Message), out: make(chan Message, out), gone: make(chan struct{})}}
}

func (w *tryWire) enter() func() {
	if w.busy.Add(1) > 1 {
		w.overlap.Store(true)
	}
	return func() { w.busy.Add(-1) }
}

func (w *tryWire) keep(msgs []Message) {
	w.mu.Lock()
	w.kept = append(w.kept, msgs...)
	w.mu.Unlock()
}

func (w *tryWire) TryWrite(msgs []Message) (bool, error) {
	defer w.enter()()
	w.tries.Add(1)
	if w.hold.Load() {
		w.keep(msgs)
		return false, nil
	}
	for i, m := range msgs {
		select {
		case w.out <- m:
		default:
			w.keep(msgs[i:])
			return false, nil
		}
	}
	return true, nil
}

func (w *tryWire) Write(msgs []Message) error {
	defer w.enter()()
	w.writes.Add(1)
	w.mu.Lock()
	kept := w.kept
	w.kept = nil
	w.mu.Unlock()
	return w.chanWire.Write(append(kept, msgs...))
}

// startTry serves h over a new tryWire whose out holds n messages, and
// returns once Open has run and no callback runs.
func startTry(t *testing.T, h *testHandler, o Options, n int) (*Conn, *tryWire) {
	t.Helper()
	w := newTryWire(n)
	c := startConnAs(t, h, o, w, w.chanWire)
	within(t, h.started, "open")
	waitFor(t, "no callback running", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.in.busy
	})
	return c, w
}

// A Send outside callbacks, with nobody writing, is written on the
// sender's goroutine before Send returns: no writer goroutine, no Write.
func TestSendWritesInline(t *testing.T) {
	h := newTestHandler()
	c, w := startTry(t, h, Options{}, 16)
	for i := range 10 {
		if err := c.SendText(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-w.out:
			if m.Text() != fmt.Sprint(i) {
				t.Fatalf("wrote %q, want %d", m.Text(), i)
			}
		default:
			t.Fatalf("message %d not written when Send returned", i)
		}
	}
	if tries, writes := w.tries.Load(), w.writes.Load(); tries != 10 || writes != 0 {
		t.Errorf("%d TryWrite and %d Write calls, want 10 and 0", tries, writes)
	}
}

// What TryWrite keeps goes out first, through a Write the core makes next
// on a writer goroutine, even when nothing more is queued; later sends
// follow in order.
func TestTryWriteKeepsTheRest(t *testing.T) {
	h := newTestHandler()
	c, w := startTry(t, h, Options{}, 1024)
	w.hold.Store(true)
	if err := c.SendText("a"); err != nil {
		t.Fatal(err)
	}
	if got := within(t, w.out, "the kept message").Text(); got != "a" {
		t.Fatalf("first written %q, want a", got)
	}
	w.hold.Store(false)
	c.SendText("b")
	if got := within(t, w.out, "the next message").Text(); got != "b" {
		t.Fatalf("then %q, want b", got)
	}
	if w.writes.Load() == 0 {
		t.Error("no Write after TryWrite kept a message")
	}
}

// During a callback the core tries nothing: the callback's sends are
// written together when it returns.
func TestNoTryDuringCallback(t *testing.T) {
	h := newTestHandler()
	h.message = func(c *Conn, m Message) error {
		c.SendText("1")
		c.SendText("2")
		return nil
	}
	_, w := startTry(t, h, Options{}, 16)
	send(t, w.chanWire, "go")
	for _, want := range []string{"1", "2"} {
		if got := within(t, w.out, "reply").Text(); got != want {
			t.Fatalf("wrote %q, want %q", got, want)
		}
	}
	if n := w.tries.Load(); n != 0 {
		t.Errorf("%d TryWrite calls during a callback", n)
	}
}

// Many senders at once on a wire that takes some and keeps the rest: each
// message is written once, each sender's in order, and TryWrite and
// Write never overlap (run with -race).
func TestConcurrentTries(t *testing.T) {
	const senders, each = 8, 200
	h := newTestHandler()
	c, w := startTry(t, h, Options{SendQueue: senders * each}, 4) // small: TryWrite often keeps the rest
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := c.SendText(fmt.Sprintf("%d %d", g, i)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		var g, i int
		m := within(t, w.out, "a message")
		if _, err := fmt.Sscanf(m.Text(), "%d %d", &g, &i); err != nil || i != next[g] {
			t.Fatalf("got %q, want sender %d's message %d", m.Text(), g, next[g])
		}
		next[g]++
	}
	wg.Wait()
	if w.overlap.Load() {
		t.Error("TryWrite and Write overlapped")
	}
	if w.tries.Load() == 0 {
		t.Error("nothing was tried")
	}
}
