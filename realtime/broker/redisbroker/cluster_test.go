package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// roomHandler resumes the topic named by the first message after the
// position it carries: "room 12".
func roomHandler(ts *topics.Topics) func(*realtime.Conn, realtime.Message) error {
	return func(c *realtime.Conn, m realtime.Message) error {
		var room string
		var after uint64
		fmt.Sscanf(m.Text(), "%s %d", &room, &after)
		return ts.Resume(c, room, after)
	}
}

func envOf(t testing.TB, c *realtimetest.Client) topics.Envelope {
	t.Helper()
	var env topics.Envelope
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ReceiveJSON(ctx, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

// A connection on node A receives what node B publishes, in order and
// exactly once; presence joined on A is listed on B and its join and leave
// reach B's subscribers.
func TestTwoNodes(t *testing.T) {
	s := startRedis(t)
	tsA := topics.New(newBroker(t, s, nil))
	tsB := topics.New(newBroker(t, s, nil))
	rtA := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			if name := c.Request().URL.Query().Get("name"); name != "" {
				return tsA.Join(c, "lobby", 0, map[string]string{"name": name})
			}
			return nil
		},
		OnMessage: roomHandler(tsA),
	}, inMemory)
	defer rtA.Shutdown(tctx(t))
	rtB := realtime.NewRoute(realtime.Funcs{OnMessage: roomHandler(tsB)}, inMemory)
	defer rtB.Shutdown(tctx(t))
	ctx := tctx(t)

	a, _ := realtimetest.DialRoute(rtA, nil)
	if err := a.SendText("room 0"); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := 1; i <= n; i++ {
		m := realtime.Text(fmt.Sprint("m", i))
		if i%3 == 0 {
			m = realtime.Binary([]byte{byte(i), 0})
		}
		if seq, err := tsB.Publish(ctx, "room", m); err != nil || seq != uint64(i) {
			t.Fatalf("publish %d: %d, %v", i, seq, err)
		}
	}
	tsB.Publish(ctx, "room", realtime.Text("end"))
	for i := 1; i <= n; i++ {
		env := envOf(t, a)
		ok := env.Topic == "room" && env.Seq == uint64(i)
		if i%3 == 0 {
			ok = ok && string(env.Binary) == string([]byte{byte(i), 0})
		} else {
			ok = ok && env.Data != nil && *env.Data == fmt.Sprint("m", i)
		}
		if !ok {
			t.Fatalf("message %d: got %+v", i, env)
		}
	}
	// Nothing twice: the next one is the last published.
	if env := envOf(t, a); env.Seq != n+1 || *env.Data != "end" {
		t.Fatalf("after the %d messages: %+v", n, env)
	}

	// Presence: b on node B follows the lobby; ada joins it on node A.
	b, _ := realtimetest.DialRoute(rtB, nil)
	b.SendText("lobby 0")
	ada, _ := realtimetest.DialRoute(rtA, httptest.NewRequest(http.MethodGet, "/?name=ada", nil))
	env := envOf(t, b)
	if env.Presence != "diff" || len(env.Joins) != 1 || env.Joins[0].ID != ada.Conn().ID() || string(env.Joins[0].Info) != `{"name":"ada"}` {
		t.Fatalf("b got %+v", env)
	}
	members, err := tsB.Members(ctx, "lobby")
	if err != nil || len(members) != 1 || members[0].ID != ada.Conn().ID() || string(members[0].Info) != `{"name":"ada"}` {
		t.Fatalf("members on B: %+v, %v", members, err)
	}
	ada.Close(realtime.CloseNormal, "")
	if env := envOf(t, b); env.Presence != "diff" || len(env.Leaves) != 1 || env.Leaves[0].ID != ada.Conn().ID() {
		t.Fatalf("b got %+v", env)
	}
	if members, err := tsB.Members(ctx, "lobby"); err != nil || len(members) != 0 {
		t.Fatalf("members after leave: %+v, %v", members, err)
	}
}

// The members of a broker that stops (a crashed node) expire after
// MemberTTL; those of a live broker are refreshed and stay.
func TestMembersExpire(t *testing.T) {
	s := startRedis(t)
	const ttl = time.Second
	live := newBroker(t, s, &redisbroker.Options{MemberTTL: ttl})
	dying := newBroker(t, s, &redisbroker.Options{MemberTTL: ttl})
	ctx := tctx(t)
	if err := live.SetMember(ctx, "t", topics.Member{ID: "live", Info: []byte(`"l"`)}); err != nil {
		t.Fatal(err)
	}
	if err := dying.SetMember(ctx, "t", topics.Member{ID: "dying"}); err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		// Expired members stay listed until ExpireMembers hands them out
		// (Topics does, then publishes their leave).
		if _, err := live.ExpireMembers(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		ms, err := live.Members(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"dying", "live"}) {
		t.Fatalf("members %v", got)
	}
	start := time.Now()
	dying.Close()
	// Expiry has no event: poll until a deadline.
	for !slices.Equal(ids(), []string{"live"}) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("dying member still listed: %v", ids())
		}
		wait(20 * time.Millisecond)
	}
	if time.Since(start) < ttl/2 {
		t.Fatalf("member expired after %v, before its TTL %v", time.Since(start), ttl)
	}
	// Two TTLs later the live broker's member is still there.
	wait(2 * ttl)
	if got := ids(); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("members %v", got)
	}
	if err := live.DeleteMember(ctx, "t", "live"); err != nil {
		t.Fatal(err)
	}
	wait(ttl) // a refresh does not bring it back
	if got := ids(); len(got) != 0 {
		t.Fatalf("members after delete %v", got)
	}
}

// wait lets time pass (for expiries and refreshes, which have no event).
func wait(d time.Duration) {
	t := time.NewTimer(d)
	<-t.C
}

func TestRelay(t *testing.T) {
	s := startRedis(t)
	a, b := newBroker(t, s, nil), newBroker(t, s, nil)
	ctx := tctx(t)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	gaveUp, hanging := make(chan error, 1), make(chan struct{})
	err := a.ServeNode(sctx, "node-a", func(ctx context.Context, req []byte) []byte {
		if string(req) == "hang" {
			close(hanging)
			<-ctx.Done()
			gaveUp <- ctx.Err()
			return nil
		}
		return append([]byte("a says "), req...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		q := fmt.Sprint("hello ", i)
		got, err := b.Request(ctx, "node-a", []byte(q))
		if err != nil || string(got) != "a says "+q {
			t.Fatalf("request: %q, %v", got, err)
		}
	}
	// A node itself too.
	if got, err := a.Request(ctx, "node-a", []byte("me")); err != nil || string(got) != "a says me" {
		t.Fatalf("request to self: %q, %v", got, err)
	}
	if _, err := b.Request(ctx, "node-x", []byte("hi")); !errors.Is(err, realtime.ErrUnknownNode) {
		t.Fatalf("request to an unserved node: %v", err)
	}
	// A requester that gives up ends the handler's context.
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		<-hanging
		cancel()
	}()
	if _, err = b.Request(rctx, "node-a", []byte("hang")); !errors.Is(err, context.Canceled) {
		t.Fatalf("request given up: %v", err)
	}
	select {
	case err := <-gaveUp:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the handler's context ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the handler's context did not end with the request")
	}
	// Once ServeNode's context ends the node is unknown. A request
	// published as it stops is lost, and waits for its context.
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := b.Request(rctx, "node-a", []byte("x"))
		cancel()
		if errors.Is(err, realtime.ErrUnknownNode) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after ServeNode ended: %v", err)
		}
		wait(10 * time.Millisecond)
	}
}
