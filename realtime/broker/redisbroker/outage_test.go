package redisbroker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Redis is killed while node B publishes and started again on the same
// port and data: B's publishes fail within their deadline meanwhile, then
// succeed again, and a connection on node A gets every message whose
// publish succeeded exactly once, in order, with contiguous sequence
// numbers.
func TestOutage(t *testing.T) {
	s := startRedis(t)
	pub := newBroker(t, s, nil)
	ts := topics.New(newBroker(t, s, nil))
	rt := realtime.NewRoute(realtime.Funcs{OnMessage: roomHandler(ts)}, &realtime.Options{Transports: inMemory.Transports, SendQueue: 8192})
	defer rt.Shutdown(tctx(t))
	ctx := tctx(t)

	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("room 0")
	// The subscription is in place once a first message comes through.
	if _, err := pub.Publish(ctx, "room", realtime.Text("0")); err != nil {
		t.Fatal(err)
	}
	if env := envOf(t, c); env.Seq != 1 {
		t.Fatalf("first: %+v", env)
	}

	// The reader keeps the connection drained.
	var got []topics.Envelope
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			var env topics.Envelope
			rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := c.ReceiveJSON(rctx, &env)
			cancel()
			if err != nil {
				t.Error(err)
				return
			}
			got = append(got, env)
			if env.Data != nil && *env.Data == "end" {
				return
			}
		}
	}()

	// The publisher runs until stopped, reporting successes and failures.
	const timeout = 500 * time.Millisecond
	var (
		mu       sync.Mutex
		acked    = []string{"0"}
		failures int
		slowest  time.Duration // of the failed publishes
	)
	progress := make(chan struct{}, 1)
	stop, pubDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := strconv.Itoa(i)
			pctx, cancel := context.WithTimeout(context.Background(), timeout)
			start := time.Now()
			_, err := pub.Publish(pctx, "room", realtime.Text(data))
			took := time.Since(start)
			cancel()
			if took > timeout+250*time.Millisecond {
				t.Errorf("publish %d took %v, its deadline was %v", i, took, timeout)
			}
			mu.Lock()
			if err == nil {
				acked = append(acked, data)
			} else {
				failures++
				slowest = max(slowest, took)
			}
			mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	// waitFor waits for the publisher to reach a state.
	waitFor := func(what string, cond func(acked, failures int) bool) {
		t.Helper()
		deadline := time.NewTimer(20 * time.Second)
		defer deadline.Stop()
		for {
			mu.Lock()
			ok := cond(len(acked), failures)
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-progress:
			case <-deadline.C:
				t.Fatalf("publisher never got to %s", what)
			}
		}
	}

	waitFor("50 acknowledged", func(a, _ int) bool { return a >= 50 })
	s.Kill()
	var before int
	mu.Lock()
	before = len(acked)
	mu.Unlock()
	waitFor("3 failures", func(_, f int) bool { return f >= 3 })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor("50 more acknowledged", func(a, _ int) bool { return a >= before+50 })
	close(stop)
	<-pubDone
	if _, err := pub.Publish(ctx, "room", realtime.Text("end")); err != nil {
		t.Fatal(err)
	}
	<-readDone
	if t.Failed() {
		return
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d published, %d failed (the slowest in %v), %d received", len(acked), failures, slowest, len(got))
	// Contiguous sequence numbers, no gap, each payload once.
	seen := map[string]bool{}
	var order []string
	for i, env := range got {
		if env.Gap != nil || env.Seq != uint64(i+2) || env.Data == nil {
			t.Fatalf("envelope %d: %+v", i, env)
		}
		if seen[*env.Data] {
			t.Fatalf("%s received twice", *env.Data)
		}
		seen[*env.Data] = true
		order = append(order, *env.Data)
	}
	// Every acknowledged message, in publish order (a failed publish may
	// have been recorded all the same: its reply was what got lost).
	j := 1 // acked[0] came before the reader
	for _, data := range order {
		if j < len(acked) && data == acked[j] {
			j++
		}
	}
	if j != len(acked) {
		t.Fatalf("received %d of the %d acknowledged messages in order; first missing %s", j-1, len(acked)-1, acked[j])
	}
	for _, data := range order {
		n, _ := strconv.Atoi(data)
		if data != "end" && fmt.Sprint(n) != data {
			t.Fatalf("unexpected payload %q", data)
		}
	}
}

// A subscription whose connection breaks reconnects and delivers what was
// published meanwhile from the history, before the live messages that
// follow, each once: without a later message to show the hole.
func TestSubscriptionResyncsAfterReconnect(t *testing.T) {
	s := startRedis(t)
	a, b := newBroker(t, s, nil), newBroker(t, s, nil)
	admin := s.Client(t)
	ctx := tctx(t)
	col := newCollector()
	sub, err := a.Subscribe(ctx, "t", col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	n := 0
	publish := func(k int) {
		for range k {
			n++
			if _, err := b.Publish(ctx, "t", realtime.Text(strconv.Itoa(n))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(5)
	col.wait(t, 5)
	for round := range 5 {
		// Cut the subscribers' connections and publish at once, while
		// they reconnect.
		if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		publish(5)
		col.wait(t, n)
		t.Logf("round %d: %d delivered", round, n)
	}
	publish(1)
	got := col.wait(t, n)
	if len(got) != n {
		t.Fatalf("%d delivered, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) || string(e.Data) != strconv.Itoa(i+1) {
			t.Fatalf("entry %d: %d %q", i, e.Seq, e.Data)
		}
	}
}

// An idle subscription pings its connection; one whose ping goes
// unanswered (Redis paused here, a dead link in life) reconnects, and
// still delivers each message once, in order.
func TestSubscriptionPings(t *testing.T) {
	s := startRedis(t)
	const interval = 50 * time.Millisecond
	a := newBroker(t, s, &redisbroker.Options{PingInterval: interval})
	b := newBroker(t, s, nil)
	admin := s.Client(t)
	ctx := tctx(t)
	col := newCollector()
	sub, err := a.Subscribe(ctx, "t", col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	wait(6 * interval) // idle: pings answered
	b.Publish(ctx, "t", realtime.Text("1"))
	col.wait(t, 1)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 10*interval.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// Blocks until the pause ends; meanwhile the subscriber's ping timed out.
	if _, err := b.Publish(ctx, "t", realtime.Text("2")); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 2)
	b.Publish(ctx, "t", realtime.Text("3"))
	got := col.wait(t, 3)
	if len(got) != 3 {
		t.Fatalf("got %d entries", len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) || string(e.Data) != strconv.Itoa(i+1) {
			t.Fatalf("entry %d: %d %q", i, e.Seq, e.Data)
		}
	}
}

// A subscription that has failed to reconnect for long enough to back off
// for over a second comes back as soon as Redis does, not when its backoff
// ends: what is published meanwhile reaches it only through the history,
// which a busy topic rolls over in less than that.
func TestSubscriptionReturnsWithRedis(t *testing.T) {
	s := startRedis(t)
	a := newBroker(t, s, nil)
	admin := s.Client(t)
	ctx := tctx(t)
	sub, err := a.Subscribe(ctx, "t", func(topics.Entry) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s.Kill()
	wait(2 * time.Second) // the backoff grows to its longest, 1.28s
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	// Reconnection has no event: poll until a deadline, well within the
	// backoff.
	const channel, within = "rtkit:{t}:live", 250 * time.Millisecond
	start := time.Now()
	for {
		n, err := admin.PubSubNumSub(ctx, channel).Result()
		if err == nil && n[channel] == 1 {
			t.Logf("back %v after Redis", time.Since(start))
			break
		}
		if time.Since(start) > within {
			t.Fatalf("the subscription is not back %v after Redis (%v, %v)", within, n, err)
		}
		wait(5 * time.Millisecond)
	}
}
