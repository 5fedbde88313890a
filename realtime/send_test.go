package realtime

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Sends that find the queue full at once under OverflowClose all fail
// with ErrQueueFull, and the overflow is reported once and closes the
// connection with 1008.
func TestConcurrentOverflowReportedOnce(t *testing.T) {
	var overflows atomic.Int32
	o := Options{SendQueue: 4, Observer: ObserverFunc(func(e Event) {
		if e.Kind == EventOverflow {
			overflows.Add(1)
		}
	})}
	// A peer that never reads: the first write blocks, the queue fills.
	w := &chanWire{in: make(chan Message), out: make(chan Message), gone: make(chan struct{})}
	closed := make(chan error, 1)
	c := startConnOn(t, Funcs{OnClose: func(_ *Conn, err error) { closed <- err }}, o, w)
	var full atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				err := c.SendText("x")
				if errors.Is(err, ErrQueueFull) {
					full.Add(1)
				}
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	err := within(t, closed, "Close")
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicyViolation || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("closed with %v, want 1008 wrapping ErrQueueFull", err)
	}
	if n := overflows.Load(); n != 1 {
		t.Errorf("%d overflow events, want 1", n)
	}
	if full.Load() == 0 {
		t.Error("no Send returned ErrQueueFull")
	}
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	for _, code := range w.closes { // Close may be called again to release the wire
		if code != ClosePolicyViolation {
			t.Errorf("wire closed with %v, want 1008", w.closes)
		}
	}
}

// Conns lists a connection once its Open has been called, not while it is
// admitted but still being opened; Len counts both.
func TestConnsListsOpenedConnections(t *testing.T) {
	opened := make(chan *Conn, 1)
	o := Options{}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Transports = []Transport{testTransport{}}
	rt := NewRoute(Funcs{OnOpen: func(c *Conn) error { opened <- c; return nil }}, &o)
	c, err := rt.admit(httptest.NewRequest("GET", "/", nil), "test")
	if err != nil {
		t.Fatal(err)
	}
	if n, cs := rt.Len(), rt.Conns(); n != 1 || len(cs) != 0 {
		t.Fatalf("admitted, not opened: Len %d, Conns %v", n, cs)
	}
	w := newChanWire()
	c.start(w)
	within(t, opened, "Open")
	if cs := rt.Conns(); len(cs) != 1 || cs[0] != c {
		t.Fatalf("opened: Conns %v", cs)
	}
	w.hangUp(io.EOF)
	<-c.Done()
	if n, cs := rt.Len(), rt.Conns(); n != 0 || len(cs) != 0 {
		t.Fatalf("closed: Len %d, Conns %v", n, cs)
	}
}
