package rtclient_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
)

// Dial's context is the connection's: cancelling it closes an open
// connection with 1001, which the server's handler hears, and Receive
// reports the context's cause.
func TestDialContextClosesConnection(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			ctx, cancel := context.WithCancel(testContext(t))
			c, err := rtclient.Dial(ctx, f.ts.URL, fastOptions(kind))
			if err != nil {
				t.Fatal(err)
			}
			recv(t, f.rec.opens)
			cancel()
			_, err = c.Receive(testContext(t))
			if ce := closeCode(t, err); ce.Code != realtime.CloseGoingAway || !errors.Is(err, context.Canceled) {
				t.Fatalf("Receive: %v, want 1001 caused by the context", err)
			}
			if err := recv(t, f.rec.closes); realtime.CloseStatus(err) != realtime.CloseGoingAway {
				t.Fatalf("the handler saw %v, want 1001", err)
			}
			if err := c.Close(realtime.CloseNormal, ""); !errors.Is(err, realtime.ErrClosed) {
				t.Fatalf("Close after the context ended: %v", err)
			}
		})
	}
}

// While reconnecting, the end of Dial's context ends the attempts.
func TestDialContextEndsReconnecting(t *testing.T) {
	f := newFixture(t, nil)
	st := make(states, 64)
	o := fastOptions(realtime.SSE)
	o.OnState = st.on
	ctx, cancel := context.WithCancel(testContext(t))
	c, err := rtclient.Dial(ctx, f.ts.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	f.proxy.refuse.Store(true) // every attempt fails
	f.drop()
	st.wait(t, rtclient.Reconnecting)
	cancel()
	recv(t, c.Done())
	if _, err := c.Receive(testContext(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive: %v, want the context's cause", err)
	}
}

// A Conn is used by many goroutines at once: senders, receivers, and
// readers of its state, then a Close racing them (run with -race).
func TestConcurrentUse(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			c := dial(t, f.ts.URL, fastOptions(kind))
			ctx := testContext(t)
			const senders, each = 4, 25
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						if err := c.SendText(ctx, fmt.Sprintf("%d-%d", g, i)); err != nil {
							t.Errorf("Send: %v", err)
							return
						}
						_ = c.State()
						_ = c.Transport()
					}
				})
			}
			got := make(chan string, senders*each)
			for range 3 {
				wg.Go(func() {
					for {
						m, err := c.Receive(ctx)
						if err != nil {
							return
						}
						got <- m.Text()
					}
				})
			}
			seen := map[string]bool{}
			for len(seen) < senders*each {
				s := recv(t, got)
				if seen[s] {
					t.Fatalf("%s received twice", s)
				}
				seen[s] = true
			}
			if err := c.Close(realtime.CloseNormal, "done"); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
		})
	}
}
