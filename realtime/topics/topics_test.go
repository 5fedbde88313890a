package topics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// roomHandler joins the topic named by the first message, resuming after
// the position it carries: "room@12".
func roomHandler(ts *topics.Topics) realtime.Handler {
	return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var room string
		var after uint64
		fmt.Sscanf(m.Text(), "%s %d", &room, &after)
		return ts.Resume(c, room, after)
	}}
}

func envOf(t *testing.T, c *realtimetest.Client) topics.Envelope {
	t.Helper()
	var env topics.Envelope
	if err := c.ReceiveJSON(tctx(t), &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func TestTopicsFanOutAndResume(t *testing.T) {
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: 4}))
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	a, _ := realtimetest.DialRoute(rt, nil)
	b, _ := realtimetest.DialRoute(rt, nil)
	a.SendText("lobby 0")
	b.SendText("lobby 0")
	for i := 1; i <= 3; i++ {
		if seq, err := ts.Publish(tctx(t), "lobby", realtime.Text(fmt.Sprint("m", i))); err != nil || seq != uint64(i) {
			t.Fatalf("publish: %d, %v", seq, err)
		}
	}
	for _, c := range []*realtimetest.Client{a, b} {
		for i := 1; i <= 3; i++ {
			env := envOf(t, c)
			if env.Topic != "lobby" || env.Seq != uint64(i) || *env.Data != fmt.Sprint("m", i) {
				t.Fatalf("got %+v", env)
			}
		}
	}
	// b goes away after m2 ... (it saw all three; pretend it saw two) and
	// comes back, on a new connection, resuming after 2.
	b.Close(realtime.CloseNormal, "")
	ts.Publish(tctx(t), "lobby", realtime.Text("m4"))
	if env := envOf(t, a); env.Seq != 4 {
		t.Fatalf("a got %+v", env)
	}
	b2, _ := realtimetest.DialRoute(rt, nil)
	b2.SendText("lobby 2")
	for _, want := range []uint64{3, 4} {
		if env := envOf(t, b2); env.Seq != want {
			t.Fatalf("resume: got %+v, want seq %d", env, want)
		}
	}
	ts.Publish(tctx(t), "lobby", realtime.Text("m5"))
	if env := envOf(t, b2); env.Seq != 5 {
		t.Fatalf("live after resume: got %+v (each message exactly once)", env)
	}
	// History keeps 4: resuming after 0 is a gap, then 2..5.
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("lobby 0")
	if env := envOf(t, c); env.Gap == nil || env.Gap.After != 0 {
		t.Fatalf("want a gap first, got %+v", env)
	}
	for _, want := range []uint64{2, 3, 4, 5} {
		if env := envOf(t, c); env.Seq != want {
			t.Fatalf("got %+v, want seq %d", env, want)
		}
	}
	rt.Shutdown(tctx(t))
}

func TestTopicsUnsubscribeOnClose(t *testing.T) {
	b := topics.NewMemoryBroker(nil)
	ts := topics.New(b)
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	a, _ := realtimetest.DialRoute(rt, nil)
	a.SendText("r 0")
	a.Close(realtime.CloseNormal, "")
	// Publishing to a topic nobody on this node follows still works, and
	// reaches nobody.
	if _, err := ts.Publish(tctx(t), "r", realtime.Text("x")); err != nil {
		t.Fatal(err)
	}
}

func TestTopicsBinaryAndPresence(t *testing.T) {
	ts := topics.New(nil)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			return ts.Join(c, "room", 0, map[string]string{"name": c.Request().URL.Query().Get("name")})
		},
	}, inMemory)
	defer rt.Shutdown(tctx(t))
	ada, _ := realtimetest.DialRoute(rt, httpRequest("/?name=ada"))
	// An empty state (Join returned before the diff), then her join.
	if env := envOf(t, ada); env.Presence != "state" || env.Seq != 0 || len(env.Members) > 1 {
		t.Fatalf("ada's state: %+v", env)
	}
	if env := envOf(t, ada); env.Presence != "diff" || env.Seq != 1 || len(env.Joins) != 1 || string(env.Joins[0].Info) != `{"name":"ada"}` || len(env.Leaves) != 0 {
		t.Fatalf("ada's join: %+v", env)
	}
	bob, _ := realtimetest.DialRoute(rt, httpRequest("/?name=bob"))
	// bob's catch-up skips the diffs: the state says it all (ada, maybe him).
	if env := envOf(t, bob); env.Presence != "state" || len(env.Members) < 1 || !hasMember(env.Members, ada.Conn().ID()) {
		t.Fatalf("bob's state: %+v", env)
	}
	for _, c := range []*realtimetest.Client{ada, bob} {
		if env := envOf(t, c); env.Presence != "diff" || env.Seq != 2 || len(env.Joins) != 1 || env.Joins[0].ID != bob.Conn().ID() {
			t.Fatalf("bob's join: %+v", env)
		}
	}
	members, _ := ts.Members(tctx(t), "room")
	if len(members) != 2 {
		t.Fatalf("members %+v", members)
	}
	ts.Publish(tctx(t), "room", realtime.Binary([]byte{1, 2}))
	if env := envOf(t, ada); string(env.Binary) != "\x01\x02" {
		t.Fatalf("binary: %+v", env)
	}
	envOf(t, bob)
	bob.Close(realtime.CloseNormal, "")
	if env := envOf(t, ada); env.Presence != "diff" || len(env.Leaves) != 1 || env.Leaves[0].ID != bob.Conn().ID() || string(env.Leaves[0].Info) != `{"name":"bob"}` {
		t.Fatalf("got %+v", env)
	}
	members, _ = ts.Members(tctx(t), "room")
	if len(members) != 1 || members[0].ID != ada.Conn().ID() {
		t.Fatalf("members after leave %+v", members)
	}
}

func hasMember(ms []topics.Member, id string) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// Many publishers and subscribers at once: every subscriber sees every
// message exactly once, in publish order.
func TestTopicsConcurrentFanOut(t *testing.T) {
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: 10000}))
	rt := realtime.NewRoute(roomHandler(ts), &realtime.Options{Transports: inMemory.Transports, SendQueue: 4096})
	defer rt.Shutdown(tctx(t))
	const subs, pubs, each = 20, 8, 100
	clients := make([]*realtimetest.Client, subs)
	for i := range clients {
		clients[i], _ = realtimetest.DialRoute(rt, nil)
		clients[i].SendText("t 0")
	}
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := ts.Publish(context.Background(), "t", realtime.Text(fmt.Sprintf("%d/%d", p, i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		next := make([]int, pubs)
		for seq := uint64(1); seq <= pubs*each; seq++ {
			env := envOf(t, c)
			var p, i int
			fmt.Sscanf(*env.Data, "%d/%d", &p, &i)
			if env.Seq != seq || next[p] != i {
				t.Fatalf("got %+v, want seq %d and %d/%d", env, seq, p, next[p])
			}
			next[p]++
		}
	}
}

func httpRequest(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}

// lossy drops every third live delivery, as a broker does across an
// outage; Topics must fetch what is missing from the history.
type lossy struct {
	topics.Broker
	mu sync.Mutex
	n  int
}

func (l *lossy) Subscribe(ctx context.Context, topic string, deliver func(topics.Entry)) (topics.Subscription, error) {
	return l.Broker.Subscribe(ctx, topic, func(e topics.Entry) {
		l.mu.Lock()
		l.n++
		drop := l.n%3 == 0
		l.mu.Unlock()
		if !drop {
			deliver(e)
		}
	})
}

func TestTopicsRecoverSkippedMessages(t *testing.T) {
	ts := topics.New(&lossy{Broker: topics.NewMemoryBroker(nil)})
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	defer rt.Shutdown(tctx(t))
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("t 0")
	for i := 1; i <= 10; i++ {
		ts.Publish(tctx(t), "t", realtime.Text(fmt.Sprint(i)))
	}
	// The last one may be dropped with nothing after it to reveal the
	// hole; one more publish does.
	ts.Publish(tctx(t), "t", realtime.Text("11"))
	ts.Publish(tctx(t), "t", realtime.Text("12"))
	for seq := uint64(1); seq <= 11; seq++ {
		if env := envOf(t, c); env.Seq != seq || *env.Data != fmt.Sprint(seq) {
			t.Fatalf("got %+v, want seq %d", env, seq)
		}
	}
}

// lagging is a broker whose history, for its next lag calls, ends two
// entries short of what was published: a store behind its live delivery.
type lagging struct {
	topics.Broker
	lag atomic.Int32
}

func (l *lagging) History(ctx context.Context, topic string, after uint64, limit int) (topics.History, error) {
	h, err := l.Broker.History(ctx, topic, after, limit)
	if err != nil || l.lag.Add(-1) < 0 {
		return h, err
	}
	h.Last = max(h.Last, 2) - 2
	for len(h.Entries) > 0 && h.Entries[len(h.Entries)-1].Seq > h.Last {
		h.Entries = h.Entries[:len(h.Entries)-1]
	}
	return h, nil
}

// A client that resumes from further than the broker's history reaches
// (it saw the newest messages live, before the store caught up) is not
// told the topic started again: the catch-up asks again and goes on
// without a gap.
func TestResumeAheadOfALaggingHistory(t *testing.T) {
	b := &lagging{Broker: topics.NewMemoryBroker(nil)}
	ts := topics.New(b)
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	defer rt.Shutdown(tctx(t))
	for i := 1; i <= 5; i++ {
		ts.Publish(tctx(t), "t", realtime.Text(fmt.Sprint(i)))
	}
	b.lag.Store(2)
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("t 5")
	ts.Publish(tctx(t), "t", realtime.Text("6"))
	if env := envOf(t, c); env.Gap != nil || env.Seq != 6 {
		t.Fatalf("got %+v, want seq 6 and no gap", env)
	}
}

// unready is a broker whose next fails History calls fail, as a broker
// still reconnecting after an outage does.
type unready struct {
	topics.Broker
	fails atomic.Int32
}

func (u *unready) History(ctx context.Context, topic string, after uint64, limit int) (topics.History, error) {
	if u.fails.Add(-1) >= 0 {
		return topics.History{}, errors.New("broker reconnecting")
	}
	return u.Broker.History(ctx, topic, after, limit)
}

// Entries the broker's delivery skipped are fetched from the history even
// when the broker fails the first requests: no gap for what is kept.
func TestSkippedMessagesWhileTheBrokerRecovers(t *testing.T) {
	b := &unready{Broker: &lossy{Broker: topics.NewMemoryBroker(nil)}}
	ts := topics.New(b)
	rt := realtime.NewRoute(roomHandler(ts), inMemory)
	defer rt.Shutdown(tctx(t))
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("t 0")
	ts.Publish(tctx(t), "t", realtime.Text("1"))
	if env := envOf(t, c); env.Seq != 1 { // caught up: live from here
		t.Fatalf("got %+v, want seq 1", env)
	}
	b.fails.Store(2)
	for i := 2; i <= 4; i++ { // the third is dropped, the fourth reveals it
		ts.Publish(tctx(t), "t", realtime.Text(fmt.Sprint(i)))
	}
	for seq := uint64(2); seq <= 4; seq++ {
		if env := envOf(t, c); env.Gap != nil || env.Seq != seq {
			t.Fatalf("got %+v, want seq %d", env, seq)
		}
	}
}

// gated is a broker whose Subscribe waits for a gate, then fails while
// failing is set, and which counts the subscriptions left open.
type gated struct {
	topics.Broker
	gate    chan struct{}
	failing atomic.Bool
	open    atomic.Int32
}

type countedSub struct {
	topics.Subscription
	b    *gated
	once sync.Once
}

func (s *countedSub) Close() error {
	s.once.Do(func() { s.b.open.Add(-1) })
	return s.Subscription.Close()
}

func (g *gated) Subscribe(ctx context.Context, topic string, deliver func(topics.Entry)) (topics.Subscription, error) {
	<-g.gate
	if g.failing.Load() {
		return nil, errors.New("broker down")
	}
	sub, err := g.Broker.Subscribe(ctx, topic, deliver)
	if err != nil {
		return nil, err
	}
	g.open.Add(1)
	return &countedSub{Subscription: sub, b: g}, nil
}

// A broker Subscribe error reaches every subscriber waiting for the topic,
// not only the first; the next attempt starts afresh and works.
func TestSubscribeErrorReachesEveryWaiter(t *testing.T) {
	b := &gated{Broker: topics.NewMemoryBroker(nil), gate: make(chan struct{})}
	b.failing.Store(true)
	ts := topics.New(b)
	rt := realtime.NewRoute(roomHandler(ts), &realtime.Options{Transports: inMemory.Transports, Logger: quiet()})
	defer rt.Shutdown(tctx(t))
	var clients []*realtimetest.Client
	var wg sync.WaitGroup
	for range 3 {
		c, _ := realtimetest.DialRoute(rt, nil)
		clients = append(clients, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.SendText("t 0") }()
	}
	close(b.gate)
	wg.Wait()
	for i, c := range clients {
		_, err := c.Receive(tctx(t))
		if realtime.CloseStatus(err) != realtime.CloseInternalError {
			t.Fatalf("client %d: %v, want the handler's error to close it", i, err)
		}
	}
	b.failing.Store(false)
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("t 0")
	ts.Publish(tctx(t), "t", realtime.Text("hi"))
	if env := envOf(t, c); env.Seq != 1 {
		t.Fatalf("got %+v", env)
	}
}

// Subscribing a connection that has already ended leaves nothing behind:
// no broker subscription, no topic state.
func TestSubscriptionForEndedConnection(t *testing.T) {
	b := &gated{Broker: topics.NewMemoryBroker(nil), gate: make(chan struct{})}
	close(b.gate)
	ts := topics.New(b)
	rt := realtime.NewRoute(realtime.Funcs{}, inMemory)
	c, _ := realtimetest.DialRoute(rt, nil)
	conn := c.Conn()
	c.Close(realtime.CloseNormal, "")
	<-conn.Done()
	if err := ts.Subscribe(conn, "t"); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("Subscribe after the end: %v, want ErrClosed", err)
	}
	if n := b.open.Load(); n != 0 {
		t.Fatalf("%d broker subscriptions left open", n)
	}

	// A connection that ends while subscribed unsubscribes.
	c, _ = realtimetest.DialRoute(rt, nil)
	if err := ts.Subscribe(c.Conn(), "t"); err != nil {
		t.Fatal(err)
	}
	if n := b.open.Load(); n != 1 {
		t.Fatalf("%d broker subscriptions, want 1", n)
	}
	c.Close(realtime.CloseNormal, "")
	if n := b.open.Load(); n != 0 {
		t.Fatalf("%d broker subscriptions left open after Close", n)
	}
}

// A MemoryBroker forgets a topic with no subscription and no member once
// Retention has passed since its last message, and only such topics.
func TestMemoryBrokerForgetsIdleTopics(t *testing.T) {
	clock := realtimetest.NewClock(time.Now())
	b := topics.NewMemoryBroker(&topics.MemoryOptions{Retention: time.Hour, Clock: clock})
	ctx := tctx(t)
	for i := range 1000 {
		b.Publish(ctx, fmt.Sprint("conversation:", i), realtime.Text("hi"))
	}
	sub, _ := b.Subscribe(ctx, "watched", func(topics.Entry) {})
	defer sub.Close()
	b.SetMember(ctx, "present", topics.Member{ID: "m"})
	if n := b.Len(); n != 1002 {
		t.Fatalf("%d topics, want 1002", n)
	}
	clock.Advance(59 * time.Minute)
	b.Publish(ctx, "fresh", realtime.Text("hi"))
	if n := b.Len(); n != 1003 {
		t.Fatalf("%d topics before the retention is over, want 1003", n)
	}
	clock.Advance(time.Minute)
	b.Publish(ctx, "fresh", realtime.Text("again"))
	if n := b.Len(); n != 3 {
		t.Fatalf("%d topics after the retention, want 3 (watched, present, fresh)", n)
	}
	if h, _ := b.History(ctx, "conversation:1", 0, 0); h.Last != 0 {
		t.Fatalf("forgotten topic still has history: %+v", h)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
