package conformance_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/rtkit/rtkit/realtime"
)

// tally counts what an Observer is told, by kind.
type tally struct {
	mu     sync.Mutex
	events map[realtime.EventKind][]realtime.Event
}

func newTally() *tally { return &tally{events: map[realtime.EventKind][]realtime.Event{}} }

func (t *tally) Observe(e realtime.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events[e.Kind] = append(t.events[e.Kind], e)
}

func (t *tally) of(k realtime.EventKind) []realtime.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]realtime.Event(nil), t.events[k]...)
}

// sum adds up the N (or 1 per event when n is false) of kind k's events.
func (t *tally) sum(k realtime.EventKind, n bool) int {
	total := 0
	for _, e := range t.of(k) {
		if n {
			total += e.N
		} else {
			total++
		}
	}
	return total
}

// An Observer hears of a connection's life in exact counts, over every
// transport: one open, each message in and out, one close with its code,
// labelled with the route's name and the transport.
func TestObserverCountsAConnection(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		obs := newTally()
		f := newFixture(t, tr, echo, realtime.Options{Name: "echo", Observer: obs})
		p := f.dial(nil)
		c := f.nextOpen()
		for _, m := range []string{"a", "bb", "ccc"} {
			p.SendText(m)
			recv(t, p)
		}
		p.Close(4000, "bye")
		<-c.Done()
		opens, closes := obs.of(realtime.EventOpen), obs.of(realtime.EventClose)
		if len(opens) != 1 || len(closes) != 1 || closes[0].Code != 4000 {
			t.Fatalf("opens %v, closes %v", opens, closes)
		}
		for _, e := range append(opens, closes...) {
			if e.Route != "echo" || e.Transport != tr.kind || e.Conn != c {
				t.Fatalf("event %+v: want route echo, transport %s", e, tr.kind)
			}
		}
		if n := obs.sum(realtime.EventReceive, false); n != 3 {
			t.Fatalf("%d messages received, want 3", n)
		}
		if n := obs.sum(realtime.EventSend, true); n != 3 {
			t.Fatalf("%d messages sent, want 3", n)
		}
		bytes := 0
		for _, e := range obs.of(realtime.EventReceive) {
			bytes += e.Bytes
		}
		if bytes != 6 {
			t.Fatalf("%d bytes received, want 6", bytes)
		}
		if st := c.Stats(); st.MessagesIn != 3 || st.MessagesOut != 3 || st.BytesIn != 6 || st.BytesOut != 6 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// A handler error is reported once, with the error.
func TestObserverCountsHandlerErrors(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		obs := newTally()
		f := newFixture(t, tr, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return errors.New("boom")
		}}, realtime.Options{Observer: obs})
		p := f.dial(nil)
		c := f.nextOpen()
		sendAsync(t, tr, p, "fail")
		f.nextClose()
		<-c.Done()
		if errs := obs.of(realtime.EventError); len(errs) != 1 || errs[0].Err == nil {
			t.Fatalf("errors %v", errs)
		}
	})
}
