package natsbroker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Three nodes publishing to one topic at once: the sequence numbers are
// 1..n, each once, and the history holds every message in that order.
func TestConcurrentPublishers(t *testing.T) {
	ns := startServer(t)
	ctx := tctx(t)
	const each = 60
	var mu sync.Mutex
	got := map[uint64]string{}
	var wg sync.WaitGroup
	for node := range 3 {
		b, _ := newBroker(t, ns, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := fmt.Sprint(node, "/", i)
				seq, err := b.Publish(ctx, "contended", realtime.Text(data))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[seq]; dup {
					t.Errorf("seq %d given to %q and %q", seq, prev, data)
				}
				got[seq] = data
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b, _ := newBroker(t, ns, nil)
	h, err := b.History(ctx, "contended", 0, 0)
	if err != nil || h.Gap || h.Last != 3*each || len(h.Entries) != 3*each {
		t.Fatalf("history: last %d, gap %v, %d entries, %v", h.Last, h.Gap, len(h.Entries), err)
	}
	for i, e := range h.Entries {
		if e.Seq != uint64(i+1) || string(e.Data) != got[e.Seq] {
			t.Fatalf("entry %d: %d %q, published as %q", i, e.Seq, e.Data, got[e.Seq])
		}
	}
}

// A topic with no message for Retention is forgotten by the server and
// starts again at 1; a subscriber of Topics is told with a gap after 0.
func TestTopicsAgeOut(t *testing.T) {
	ns := startServer(t)
	ctx := tctx(t)
	b, c := newBroker(t, ns, &natsbroker.Options{Retention: time.Second})
	ts := topics.New(b)
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	defer rt.Shutdown(ctx)
	sub, _ := realtimetest.DialRoute(rt, nil)
	sub.SendText("old 0")
	for i := 1; i <= 3; i++ {
		if _, err := ts.Publish(ctx, "old", realtime.Text(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		envOf(t, sub)
	}
	// Ageing has no event to wait for: poll the history, with a deadline.
	for {
		h, err := b.History(ctx, "old", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.Last == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not aged out: %s", fmtHistory(h))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if seq, err := ts.Publish(ctx, "old", realtime.Text("again")); err != nil || seq != 1 {
		t.Fatalf("after ageing: seq %d, %v", seq, err)
	}
	if env := envOf(t, sub); env.Gap == nil || env.Gap.After != 0 {
		t.Fatalf("want a gap after 0, got %+v", env)
	}
	if env := envOf(t, sub); env.Seq != 1 || *env.Data != "again" {
		t.Fatalf("got %+v", env)
	}
	js, _ := jetstream.New(c.nc)
	if info, _ := js.AccountInfo(ctx); info.Streams != 2 {
		t.Fatalf("streams: %d", info.Streams)
	}
}

// Two nodes expiring the same stale member at once: one gets it.
func TestExpireMembersOnce(t *testing.T) {
	ns := startServer(t)
	ctx := tctx(t)
	o := &natsbroker.Options{PresenceTTL: 500 * time.Millisecond}
	dead, _ := newBroker(t, ns, o)
	if err := dead.SetMember(ctx, "room", topics.Member{ID: "ghost", Info: []byte(`{"name":"g"}`)}); err != nil {
		t.Fatal(err)
	}
	dead.Close() // stops refreshing, as a crash would
	b1, _ := newBroker(t, ns, o)
	b2, _ := newBroker(t, ns, o)
	// Expiry has no event: both nodes try at once until one gets it.
	var all []topics.Member
	for len(all) == 0 {
		var got [2][]topics.Member
		var wg sync.WaitGroup
		for i, b := range []*natsbroker.Broker{b1, b2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ms, err := b.ExpireMembers(ctx, "room")
				if err != nil {
					t.Error(err)
				}
				got[i] = ms
			}()
		}
		wg.Wait()
		all = append(got[0], got[1]...)
		if len(all) > 1 {
			t.Fatalf("expired twice: %+v and %+v", got[0], got[1])
		}
		select {
		case <-ctx.Done():
			t.Fatal("member did not expire")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if all[0].ID != "ghost" || string(all[0].Info) != `{"name":"g"}` {
		t.Fatalf("expired: %+v", all)
	}
	if ms, _ := b1.Members(ctx, "room"); len(ms) != 0 {
		t.Fatalf("members after expiry: %+v", ms)
	}
	if ms, _ := b1.ExpireMembers(ctx, "room"); len(ms) != 0 {
		t.Fatalf("expired again: %+v", ms)
	}
}

// A node whose broker stops (its process died) leaves its members behind;
// a surviving node's Topics publishes their leave.
func TestLeaveOnCrash(t *testing.T) {
	ns := startServer(t)
	ctx := tctx(t)
	o := &natsbroker.Options{PresenceTTL: 500 * time.Millisecond}
	ba, _ := newBroker(t, ns, o)
	bb, _ := newBroker(t, ns, o)
	tsA, tsB := topics.New(ba), topics.New(bb)
	rtA := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return tsA.Join(c, "room", 0, map[string]string{"name": c.Request().URL.Query().Get("name")})
	}}, inMemory)
	defer rtA.Shutdown(ctx)
	rtB := realtime.NewRoute(roomHandler(tsB), inMemory)
	defer rtB.Shutdown(ctx)
	w, _ := realtimetest.DialRoute(rtB, nil)
	w.SendText("room 0")
	ada, _ := realtimetest.DialRoute(rtA, httptest.NewRequest("GET", "/?name=ada", nil))
	if env := envOf(t, w); env.Presence != "diff" || len(env.Joins) != 1 || env.Joins[0].ID != ada.Conn().ID() {
		t.Fatalf("join: %+v", env)
	}
	ba.Close() // node A dies: no leave from it, no refresh
	start := time.Now()
	env := envOf(t, w)
	if env.Presence != "diff" || len(env.Leaves) != 1 || env.Leaves[0].ID != ada.Conn().ID() || string(env.Leaves[0].Info) != `{"name":"ada"}` {
		t.Fatalf("leave: %+v", env)
	}
	t.Logf("leave %v after the crash (PresenceTTL %v)", time.Since(start), o.PresenceTTL)
	if ms, err := tsB.Members(ctx, "room"); err != nil || len(ms) != 0 {
		t.Fatalf("members: %+v, %v", ms, err)
	}
}

// BenchmarkTopics publishes one message to each of 10 and of 100,000
// topics on one embedded server, with file storage (the default) and
// with memory storage, then reports the streams on the server, its memory
// (server.Varz), the publish latency p50/p99 and the catch-up latency
// p50/p99 over 2,000 topics picked in the set: after a publish, a History
// of the topic's last two messages, what a client that missed one reads.
//
//	go test -run '^$' -bench Topics -benchtime 1x ./realtime/broker/natsbroker/
func BenchmarkTopics(b *testing.B) {
	for _, st := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		for _, n := range []int{10, 100000} {
			b.Run(fmt.Sprint(st, "/", n), func(b *testing.B) { benchTopics(b, st, n) })
		}
	}
}

func benchTopics(b *testing.B, st jetstream.StorageType, n int) {
	for range b.N {
		ns := startServer(b)
		br, c := newBroker(b, ns, &natsbroker.Options{Storage: st})
		ctx := context.Background()
		before, _ := ns.s.Varz(nil)
		// Many publishers, as many nodes' connections would be.
		const workers = 32
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					if _, err := br.Publish(ctx, fmt.Sprint("topic-", i), realtime.Text("hello")); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		js, _ := jetstream.New(c.nc)
		info, _ := js.AccountInfo(ctx)
		after, _ := ns.s.Varz(nil)
		pub, hist := make([]time.Duration, 0, 2000), make([]time.Duration, 0, 2000)
		for i := range 2000 {
			topic := fmt.Sprint("topic-", i*7919%n)
			t0 := time.Now()
			seq, err := br.Publish(ctx, topic, realtime.Text("again"))
			if err != nil {
				b.Fatal(err)
			}
			pub = append(pub, time.Since(t0))
			t0 = time.Now()
			if h, err := br.History(ctx, topic, seq-2, 0); err != nil || len(h.Entries) != 2 {
				b.Fatalf("history: %+v, %v", h, err)
			}
			hist = append(hist, time.Since(t0))
		}
		b.ReportMetric(float64(info.Streams), "streams")
		b.ReportMetric(float64(after.Mem)/(1<<20), "server-MiB")
		b.ReportMetric(float64(after.Mem-before.Mem)/(1<<20), "server-MiB-added")
		q := func(l []time.Duration, p float64) float64 {
			slices.Sort(l)
			return float64(l[int(p*float64(len(l)-1))].Microseconds())
		}
		b.ReportMetric(q(pub, .5), "publish-p50-µs")
		b.ReportMetric(q(pub, .99), "publish-p99-µs")
		b.ReportMetric(q(hist, .5), "catchup-p50-µs")
		b.ReportMetric(q(hist, .99), "catchup-p99-µs")
	}
}
