package realtime

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// benchConn is an open connection on a chanWire whose reader is not
// running, so a benchmark can call the delivery path itself.
func benchConn(b *testing.B, o Options) *Conn {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Inbox = 1 << 20
	o.InboxBytes = 1 << 30
	o.Transports = []Transport{testTransport{}}
	rt := NewRoute(Funcs{OnMessage: func(c *Conn, m Message) error { return nil }}, &o)
	c, err := rt.admit(httptest.NewRequest("GET", "/", nil), "bench")
	if err != nil {
		b.Fatal(err)
	}
	w := newChanWire()
	c.mu.Lock()
	c.bindLocked(w)
	c.reader = w
	c.mu.Unlock()
	b.Cleanup(func() { c.finish(io.EOF) })
	return c
}

// BenchmarkDeliver measures what the core adds per received message, with
// a handler that does nothing: "inline" is a quick callback run by the
// reader itself (the usual case), "inbox" a message queued behind a
// running callback and run from the inbox afterwards.
//
//	go test -run XXX -bench Deliver ./realtime/
func BenchmarkDeliver(b *testing.B) {
	m := Text("hello")
	b.Run("inline", func(b *testing.B) {
		c := benchConn(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			c.received(m)
		}
	})
	b.Run("inbox", func(b *testing.B) {
		c := benchConn(b, Options{})
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if n == 0 {
				c.mu.Lock()
				c.in.busy = true // a callback runs: messages queue
				c.mu.Unlock()
			}
			c.received(m)
			if n++; n == 64 {
				c.drain(false)
				n = 0
			}
		}
		c.drain(false)
	})
}
