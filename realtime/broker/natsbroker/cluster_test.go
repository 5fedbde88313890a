package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// roomHandler resumes the topic named by the first message after the
// position it carries: "room 12".
func roomHandler(ts *topics.Topics) realtime.Handler {
	return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var room string
		var after uint64
		fmt.Sscanf(m.Text(), "%s %d", &room, &after)
		return ts.Resume(c, room, after)
	}}
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
// exactly once; presence set on A is seen from B.
func TestTwoNodes(t *testing.T) {
	ns := startServer(t)
	ba, _ := newBroker(t, ns, nil)
	bb, _ := newBroker(t, ns, nil)
	tsA, tsB := topics.New(ba), topics.New(bb)
	rtA := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			if name := c.Request().URL.Query().Get("name"); name != "" {
				return tsA.Join(c, "presence-room", 0, map[string]string{"name": name})
			}
			return nil
		},
		OnMessage: roomHandler(tsA).(realtime.Funcs).OnMessage,
	}, inMemory)
	defer rtA.Shutdown(tctx(t))
	rtB := realtime.NewRoute(roomHandler(tsB), inMemory)
	defer rtB.Shutdown(tctx(t))
	ctx := tctx(t)

	a, _ := realtimetest.DialRoute(rtA, nil)
	if err := a.SendText("room 0"); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 1; i <= n; i++ {
		m := realtime.Text(fmt.Sprint("m", i))
		if i%2 == 0 {
			m = realtime.Binary([]byte{byte(i)})
		}
		if seq, err := tsB.Publish(ctx, "room", m); err != nil || seq != uint64(i) {
			t.Fatalf("publish %d: %d, %v", i, seq, err)
		}
	}
	for i := 1; i <= n; i++ {
		env := envOf(t, a)
		ok := env.Topic == "room" && env.Seq == uint64(i)
		if i%2 == 0 {
			ok = ok && string(env.Binary) == string([]byte{byte(i)})
		} else {
			ok = ok && env.Data != nil && *env.Data == fmt.Sprint("m", i)
		}
		if !ok {
			t.Fatalf("envelope %d: %+v", i, env)
		}
	}
	// Exactly once: the next thing a receives is the next message.
	tsB.Publish(ctx, "room", realtime.Text("last"))
	if env := envOf(t, a); env.Seq != n+1 {
		t.Fatalf("after %d: %+v", n, env)
	}

	// Presence: a watcher on B, a member joining on A.
	w, _ := realtimetest.DialRoute(rtB, nil)
	w.SendText("presence-room 0")
	ada, _ := realtimetest.DialRoute(rtA, httptest.NewRequest("GET", "/?name=ada", nil))
	if env := envOf(t, w); env.Presence != "diff" || len(env.Joins) != 1 || env.Joins[0].ID != ada.Conn().ID() || string(env.Joins[0].Info) != `{"name":"ada"}` {
		t.Fatalf("B got %+v", env)
	}
	members, err := tsB.Members(ctx, "presence-room")
	if err != nil || len(members) != 1 || members[0].ID != ada.Conn().ID() || string(members[0].Info) != `{"name":"ada"}` {
		t.Fatalf("members on B: %+v, %v", members, err)
	}
	ada.Close(realtime.CloseNormal, "")
	if env := envOf(t, w); env.Presence != "diff" || len(env.Leaves) != 1 || env.Leaves[0].ID != ada.Conn().ID() {
		t.Fatalf("B got %+v", env)
	}
	if members, err := tsB.Members(ctx, "presence-room"); err != nil || len(members) != 0 {
		t.Fatalf("members on B after leave: %+v, %v", members, err)
	}
}

// The NATS server goes away mid-stream and comes back: publishing fails
// promptly meanwhile, then resumes, and a subscriber on the other node
// sees every acknowledged message once, in order.
func TestOutage(t *testing.T) {
	ns := startServer(t)
	ba, ca := newBroker(t, ns, nil)
	bb, cb := newBroker(t, ns, nil)
	tsA, tsB := topics.New(ba), topics.New(bb)
	rtB := realtime.NewRoute(roomHandler(tsB), &realtime.Options{Transports: inMemory.Transports, SendQueue: 1024})
	defer rtB.Shutdown(tctx(t))
	sub, _ := realtimetest.DialRoute(rtB, nil)
	sub.SendText("t 0")

	acked := map[uint64]string{}
	var last uint64
	publish := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		data := fmt.Sprint("m", i)
		seq, err := tsA.Publish(ctx, "t", realtime.Text(data))
		if err == nil {
			if seq <= last {
				t.Fatalf("seq %d after %d", seq, last)
			}
			acked[seq], last = data, seq
		}
		return err
	}
	i := 0
	for ; i < 20; i++ {
		if err := publish(i); err != nil {
			t.Fatal(err)
		}
	}

	ns.stop()
	for range 3 {
		const wait = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		start := time.Now()
		_, err := ba.Publish(ctx, "t", realtime.Text("during the outage"))
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Fatal("publish succeeded with the server down")
		}
		if took > wait+500*time.Millisecond {
			t.Fatalf("publish took %v to fail (deadline %v): %v", took, wait, err)
		}
	}

	ns.start()
	for _, c := range []*client{ca, cb} {
		select {
		case <-c.reconnected:
		case <-time.After(10 * time.Second):
			t.Fatal("no reconnect")
		}
	}
	// B's subscriptions are back once the server has read what B sent.
	if err := cb.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for stop := i + 20; i < stop; i++ {
		if err := publish(i); err != nil {
			t.Fatalf("publish after the outage: %v", err)
		}
	}

	var seen []uint64
	for len(seen) == 0 || seen[len(seen)-1] < last {
		env := envOf(t, sub)
		if env.Gap != nil {
			t.Fatalf("gap: %+v", env)
		}
		if len(seen) > 0 && env.Seq <= seen[len(seen)-1] {
			t.Fatalf("seq %d after %d", env.Seq, seen[len(seen)-1])
		}
		if want, ok := acked[env.Seq]; ok && *env.Data != want {
			t.Fatalf("seq %d: %q, want %q", env.Seq, *env.Data, want)
		}
		seen = append(seen, env.Seq)
	}
	for seq := range acked {
		if _, ok := slices.BinarySearch(seen, seq); !ok {
			t.Fatalf("acknowledged seq %d never delivered; got %v", seq, seen)
		}
	}
}

func TestRelay(t *testing.T) {
	ns := startServer(t)
	ba, _ := newBroker(t, ns, nil)
	bb, _ := newBroker(t, ns, nil)
	ctx, cancel := context.WithCancel(tctx(t))
	err := ba.ServeNode(ctx, "node-a", func(ctx context.Context, req []byte) []byte {
		if _, ok := ctx.Deadline(); !ok {
			return []byte("no deadline")
		}
		return append([]byte("a:"), req...)
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(tctx(t), 5*time.Second)
	defer rcancel()
	big := make([]byte, 64<<10) // a route's read limit
	for _, req := range [][]byte{[]byte("hello"), big} {
		resp, err := bb.Request(rctx, "node-a", req)
		if err != nil || string(resp) != "a:"+string(req) {
			t.Fatalf("answer %.20q, %v", resp, err)
		}
	}
	start := time.Now()
	if _, err := bb.Request(rctx, "node-b", []byte("x")); !errors.Is(err, realtime.ErrUnknownNode) || time.Since(start) > time.Second {
		t.Fatalf("unserved node: %v after %v", err, time.Since(start))
	}
	// Once ServeNode's context ends, node-a is unknown.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// A request that arrives as the subscription ends gets no answer.
		pctx, pcancel := context.WithTimeout(rctx, 200*time.Millisecond)
		_, err := bb.Request(pctx, "node-a", []byte("x"))
		pcancel()
		if errors.Is(err, realtime.ErrUnknownNode) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-a still served after its context ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling: the unsubscription has no event
	}
}

// The members of a broker that goes away without deleting them expire
// after PresenceTTL; until then its refreshes keep them.
func TestPresenceExpiry(t *testing.T) {
	ns := startServer(t)
	const ttl = time.Second
	ba, _ := newBroker(t, ns, &natsbroker.Options{PresenceTTL: ttl})
	bb, _ := newBroker(t, ns, &natsbroker.Options{PresenceTTL: ttl})
	ctx := tctx(t)
	if err := ba.SetMember(ctx, "room", topics.Member{ID: "m.1", Info: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := ba.SetMember(ctx, "room2", topics.Member{ID: "m.2"}); err != nil {
		t.Fatal(err)
	}
	if err := ba.SetMember(ctx, "room", topics.Member{ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := bb.DeleteMember(ctx, "room", "gone"); err != nil {
		t.Fatal(err)
	}
	// Refreshed past several TTLs (polling: expiry has no event).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(5 * ttl / 2); time.Now().Before(end); <-tick.C {
		ms, err := bb.Members(ctx, "room")
		if err != nil || len(ms) != 1 || ms[0].ID != "m.1" || string(ms[0].Info) != `{"x":1}` {
			t.Fatalf("members: %+v, %v", ms, err)
		}
	}
	ba.Close() // as a crash would: nothing deletes the members
	// Members lists an expired member until ExpireMembers hands it out
	// (as topics.Topics does every TTL/2, to publish its leave), so that
	// a presence state agrees with the diffs after it.
	var expired []topics.Member
	for end := time.Now().Add(3 * ttl); ; <-tick.C {
		got, err := bb.ExpireMembers(ctx, "room")
		if err != nil {
			t.Fatal(err)
		}
		expired = append(expired, got...)
		ms, err := bb.Members(ctx, "room")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("members of a closed broker still there: %+v (expired %+v)", ms, expired)
		}
	}
	if len(expired) != 1 || expired[0].ID != "m.1" {
		t.Fatalf("expired %+v, want m.1 once", expired)
	}
}
