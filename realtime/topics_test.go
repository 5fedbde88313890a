package realtime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// roomHandler joins the topic named by the first message, resuming after
// the position it carries: "room@12".
func roomHandler(ts *realtime.Topics) realtime.Handler {
	return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var room string
		var after uint64
		fmt.Sscanf(m.Text(), "%s %d", &room, &after)
		return ts.Resume(c, room, after)
	}}
}

func envOf(t *testing.T, c *realtimetest.Client) realtime.Envelope {
	t.Helper()
	var env realtime.Envelope
	if err := c.ReceiveJSON(tctx(t), &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func TestTopicsFanOutAndResume(t *testing.T) {
	ts := realtime.NewTopics(realtime.NewMemoryBroker(&realtime.MemoryOptions{History: 4}))
	rt := realtime.NewRoute(roomHandler(ts), nil)
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
	b := realtime.NewMemoryBroker(nil)
	ts := realtime.NewTopics(b)
	rt := realtime.NewRoute(roomHandler(ts), nil)
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
	ts := realtime.NewTopics(nil)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			return ts.Join(c, "room", 0, map[string]string{"name": c.Request().URL.Query().Get("name")})
		},
	}, nil)
	defer rt.Shutdown(tctx(t))
	ada, _ := realtimetest.DialRoute(rt, httpRequest("/?name=ada"))
	if env := envOf(t, ada); env.Presence != "join" || string(env.Member.Info) != `{"name":"ada"}` {
		t.Fatalf("got %+v", env)
	}
	bob, _ := realtimetest.DialRoute(rt, httpRequest("/?name=bob"))
	for _, c := range []*realtimetest.Client{ada, bob} {
		// bob replays the history: ada's join, then his own.
		env := envOf(t, c)
		if c == bob {
			if env.Member.ID != ada.Conn().ID() {
				t.Fatalf("bob first sees %+v", env)
			}
			env = envOf(t, c)
		}
		if env.Presence != "join" || env.Member.ID != bob.Conn().ID() {
			t.Fatalf("got %+v", env)
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
	if env := envOf(t, ada); env.Presence != "leave" || env.Member.ID != bob.Conn().ID() {
		t.Fatalf("got %+v", env)
	}
	members, _ = ts.Members(tctx(t), "room")
	if len(members) != 1 || members[0].ID != ada.Conn().ID() {
		t.Fatalf("members after leave %+v", members)
	}
}

// Many publishers and subscribers at once: every subscriber sees every
// message exactly once, in publish order.
func TestTopicsConcurrentFanOut(t *testing.T) {
	ts := realtime.NewTopics(realtime.NewMemoryBroker(&realtime.MemoryOptions{History: 10000}))
	rt := realtime.NewRoute(roomHandler(ts), &realtime.Options{SendQueue: 4096})
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
	realtime.Broker
	mu sync.Mutex
	n  int
}

func (l *lossy) Subscribe(ctx context.Context, topic string, deliver func(realtime.Entry)) (realtime.Subscription, error) {
	return l.Broker.Subscribe(ctx, topic, func(e realtime.Entry) {
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
	ts := realtime.NewTopics(&lossy{Broker: realtime.NewMemoryBroker(nil)})
	rt := realtime.NewRoute(roomHandler(ts), nil)
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
