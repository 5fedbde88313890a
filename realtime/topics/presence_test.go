package topics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// presenceView is a client's member list, rebuilt from the envelopes it
// receives as a client would: a state replaces it, a diff applies to it.
// It also reads the one-member "join"/"leave" envelopes of earlier
// versions, so that BenchmarkJoinStorm measures them too.
type presenceView struct {
	members   map[string]bool
	envelopes int // presence envelopes received
}

type anyEnvelope struct {
	Presence string          `json:"presence"`
	Joins    []topics.Member `json:"joins"`
	Leaves   []topics.Member `json:"leaves"`
	Members  []topics.Member `json:"members"`
	Member   *topics.Member  `json:"member"`
}

func (v *presenceView) apply(data []byte) {
	var env anyEnvelope
	json.Unmarshal(data, &env)
	if env.Presence == "" {
		return
	}
	v.envelopes++
	if v.members == nil {
		v.members = map[string]bool{}
	}
	switch env.Presence {
	case "state":
		clear(v.members)
		for _, m := range env.Members {
			v.members[m.ID] = true
		}
	case "diff":
		for _, m := range env.Leaves {
			delete(v.members, m.ID)
		}
		for _, m := range env.Joins {
			v.members[m.ID] = true
		}
	case "join":
		v.members[env.Member.ID] = true
	case "leave":
		delete(v.members, env.Member.ID)
	}
}

// joinView is presenceView for a storm, where nobody leaves, made
// cheap: it picks the member ids out of the envelope without decoding the
// JSON and keeps a bitset over the members' numbers, so that the benchmark
// measures the server rather than N clients each holding N members.
type joinView struct {
	index     map[string]int // member id → number; read only
	seen      []uint64
	count     int
	envelopes int
}

func (v *joinView) apply(data []byte) {
	kind := []byte(`"presence":"`)
	i := bytes.Index(data, kind)
	if i < 0 {
		return
	}
	v.envelopes++
	if v.seen == nil {
		v.seen = make([]uint64, (len(v.index)+63)/64)
	}
	if bytes.HasPrefix(data[i+len(kind):], []byte("state")) {
		clear(v.seen)
		v.count = 0
	}
	key := []byte(`"id":"`)
	for {
		j := bytes.Index(data, key)
		if j < 0 {
			return
		}
		data = data[j+len(key):]
		k := bytes.IndexByte(data, '"')
		if n, ok := v.index[string(data[:k])]; ok && v.seen[n/64]&(1<<(n%64)) == 0 {
			v.seen[n/64] |= 1 << (n % 64)
			v.count++
		}
		data = data[k:]
	}
}

// storm has n connections join one topic at once, each reading until its
// view lists all n, and returns the presence envelopes they received in
// all.
func storm(tb testing.TB, b topics.Broker, n int, fast bool) (envelopes int) {
	ts := topics.New(b)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { return ts.Join(c, "storm", 0, nil) },
	}, &realtime.Options{Transports: inMemory.Transports, SendQueue: 1 << 16, MaxConnsPerClient: -1})
	defer rt.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	conns := make([]*realtimetest.Client, n)
	index := map[string]int{}
	for i := range conns {
		c, err := realtimetest.DialRoute(rt, nil)
		if err != nil {
			tb.Fatal(err)
		}
		conns[i], index[c.Conn().ID()] = c, i
	}
	// Nobody leaves before all have converged.
	defer func() {
		for _, c := range conns {
			c.Close(realtime.CloseNormal, "")
		}
	}()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v presenceView
			jv := joinView{index: index}
			for len(v.members) < n && jv.count < n {
				m, err := c.Receive(ctx)
				if err != nil {
					errs <- fmt.Errorf("after %d envelopes, %d members: %w", v.envelopes+jv.envelopes, len(v.members)+jv.count, err)
					return
				}
				if fast {
					jv.apply(m.Data)
				} else {
					v.apply(m.Data)
				}
			}
			total.Add(int64(v.envelopes + jv.envelopes))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return int(total.Load())
}

// Members joining at once converge: every connection ends up listing all
// of them from the state and diffs it received, and the diffs reach the
// topic's history like any message.
func TestJoinStormConverges(t *testing.T) {
	mb := topics.NewMemoryBroker(nil)
	const n = 300
	if got := storm(t, mb, n, false); got < n {
		t.Fatalf("%d presence envelopes for %d members", got, n)
	}
	h, err := mb.History(tctx(t), "storm", 0, 0)
	if err != nil || h.Last == 0 || len(h.Entries) != int(h.Last) {
		t.Fatalf("history: %+v, %v", h, err)
	}
	joined := map[string]bool{}
	for i, e := range h.Entries {
		if e.Seq != uint64(i+1) || e.Type != topics.PresenceMessage {
			t.Fatalf("entry %d: %+v", i, e)
		}
		var d anyEnvelope
		json.Unmarshal(e.Data, &d)
		for _, m := range d.Joins {
			joined[m.ID] = true
		}
	}
	if len(joined) != n {
		t.Fatalf("the history's diffs join %d members, want %d", len(joined), n)
	}
}

// A member that leaves and a member that joins within one interval reach
// a watcher in one diff, the leave with the member's info.
func TestPresenceDiffCoalesces(t *testing.T) {
	ts := topics.New(nil)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			if name := c.Request().URL.Query().Get("name"); name != "" {
				return ts.Join(c, "room", 0, map[string]string{"name": name})
			}
			return ts.Resume(c, "room", 0)
		},
	}, inMemory)
	defer rt.Shutdown(tctx(t))
	watcher, _ := realtimetest.DialRoute(rt, nil)
	ada, _ := realtimetest.DialRoute(rt, httpRequest("/?name=ada"))
	if env := envOf(t, watcher); env.Presence != "diff" || len(env.Joins) != 1 || env.Joins[0].ID != ada.Conn().ID() {
		t.Fatalf("watcher: %+v", env)
	}
	// Bob joins and ada leaves at once: one diff (unless the interval
	// ends between the two, which the loop allows).
	var joins, leaves []topics.Member
	bob, _ := realtimetest.DialRoute(rt, httpRequest("/?name=bob"))
	ada.Close(realtime.CloseNormal, "")
	for len(joins) < 1 || len(leaves) < 1 {
		env := envOf(t, watcher)
		if env.Presence != "diff" {
			t.Fatalf("watcher: %+v", env)
		}
		joins, leaves = append(joins, env.Joins...), append(leaves, env.Leaves...)
	}
	if len(joins) != 1 || joins[0].ID != bob.Conn().ID() || len(leaves) != 1 || leaves[0].ID != ada.Conn().ID() || string(leaves[0].Info) != `{"name":"ada"}` {
		t.Fatalf("joins %+v, leaves %+v", joins, leaves)
	}
}

// BenchmarkJoinStorm has N connections join one topic at once on the
// in-memory broker and reports the presence envelopes they received until
// every one listed all N, and how long that took.
//
//	go test -run '^$' -bench JoinStorm -benchtime 1x ./realtime/topics/
func BenchmarkJoinStorm(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var env int
			start := time.Now()
			for range b.N {
				env = storm(b, topics.NewMemoryBroker(nil), n, true)
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/storm")
			b.ReportMetric(float64(env), "envelopes")
			b.ReportMetric(float64(env)/float64(n), "envelopes/member")
		})
	}
}
