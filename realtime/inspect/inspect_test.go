package inspect_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/inspect"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// room is a route whose clients join the topic "lobby".
type room struct {
	route  *realtime.Route
	topics *topics.Topics
	url    string
	joined chan *realtime.Conn
}

func newRoom(t *testing.T) *room {
	t.Helper()
	r := &room{topics: topics.New(nil), joined: make(chan *realtime.Conn, 8)}
	r.route = realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		err := r.topics.Subscribe(c, "lobby")
		r.joined <- c
		return err
	}}, &realtime.Options{
		Transports: []realtime.Transport{rtws.New(rtws.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
		Logger:     quiet,
	})
	srv := httptest.NewServer(r.route)
	r.url = srv.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.route.Shutdown(ctx)
		srv.Close()
	})
	return r
}

// join connects a client on k and waits until it is in the lobby.
func (r *room) join(t *testing.T, k realtime.Kind) *realtime.Conn {
	t.Helper()
	cl, err := rtclient.Dial(tctx(t), r.url, &rtclient.Options{Transports: []realtime.Kind{k}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(1000, "") })
	select {
	case c := <-r.joined:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no join")
		return nil
	}
}

// A snapshot counts a route's connections by transport, lists each with
// its address and traffic, lists the topic with its subscribers and
// history, and says the cluster's other nodes are unknown.
func TestSnapshot(t *testing.T) {
	r := newRoom(t)
	ws := r.join(t, realtime.WebSocket)
	r.join(t, realtime.SSE)
	r.join(t, realtime.SSE)
	r.join(t, realtime.LongPoll)
	if _, err := r.topics.Publish(tctx(t), "lobby", realtime.Text("hello")); err != nil {
		t.Fatal(err)
	}
	insp := inspect.New(&inspect.Options{
		Routes: []inspect.Route{{Name: "/room", Route: r.route}},
		Topics: []inspect.Topics{{Name: "rooms", Topics: r.topics}},
		Node:   "node-a",
	})
	defer insp.Shutdown(tctx(t))
	s := insp.Snapshot(tctx(t))
	if s.Node != "node-a" || len(s.Routes) != 1 || len(s.Topics) != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	rs := s.Routes[0]
	if rs.Name != "/room" || rs.Conns != 4 || rs.ByTransport["websocket"] != 1 || rs.ByTransport["sse"] != 2 || rs.ByTransport["longpoll"] != 1 {
		t.Fatalf("route %+v", rs)
	}
	if len(rs.Listed) != 4 {
		t.Fatalf("listed %d", len(rs.Listed))
	}
	found := false
	for _, c := range rs.Listed {
		if c.Remote == "" || c.Age < 0 || c.Transport == "" {
			t.Errorf("conn %+v", c)
		}
		if c.ID == ws.ID() {
			found = c.Transport == "websocket" && c.Remote == ws.Request().RemoteAddr
		}
	}
	if !found {
		t.Errorf("the WebSocket connection %s is not listed as such: %+v", ws.ID(), rs.Listed)
	}
	ts := s.Topics[0]
	if ts.Name != "rooms" || len(ts.Topics) != 1 || ts.Topics[0] != (inspect.TopicSnapshot{Name: "lobby", Subscribers: 4, History: 1, Last: 1}) {
		t.Fatalf("topics %+v", ts)
	}
	if s.Cluster.Known || len(s.Cluster.Nodes) != 1 || s.Cluster.Nodes[0] != "node-a" {
		t.Fatalf("cluster %+v", s.Cluster)
	}
}

// MaxConns bounds the list, not the counts: the longest send queues come
// first.
func TestSnapshotListsAtMostMaxConns(t *testing.T) {
	r := newRoom(t)
	for range 3 {
		r.join(t, realtime.WebSocket)
	}
	insp := inspect.New(&inspect.Options{Routes: []inspect.Route{{Name: "/room", Route: r.route}}, MaxConns: 2})
	defer insp.Shutdown(tctx(t))
	rs := insp.Snapshot(tctx(t)).Routes[0]
	if rs.Conns != 3 || len(rs.Listed) != 2 {
		t.Fatalf("conns %d, listed %d", rs.Conns, len(rs.Listed))
	}
}

// A broker that lists its nodes is asked.
func TestClusterFromNodeLister(t *testing.T) {
	ts := topics.New(listing{topics.NewMemoryBroker(nil)})
	insp := inspect.New(&inspect.Options{Topics: []inspect.Topics{{Name: "t", Topics: ts}}, Node: "me"})
	defer insp.Shutdown(tctx(t))
	c := insp.Snapshot(tctx(t)).Cluster
	if !c.Known || strings.Join(c.Nodes, ",") != "a,b" {
		t.Fatalf("cluster %+v", c)
	}
}

type listing struct{ *topics.MemoryBroker }

func (listing) Nodes(context.Context) ([]string, error) { return []string{"b", "a", "b"}, nil }

// Mounted under a prefix, the handler serves its page, the client it
// imports, a JSON snapshot, and its route (which answers a negotiation
// GET); anything else is 404.
func TestHandlerPaths(t *testing.T) {
	r := newRoom(t)
	insp := inspect.New(&inspect.Options{Routes: []inspect.Route{{Name: "/room", Route: r.route}}})
	defer insp.Shutdown(tctx(t))
	mux := http.NewServeMux()
	mux.Handle("/debug/rtkit/", insp)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/debug/rtkit/"); code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `from "./rtkit.js"`) {
		t.Fatalf("page: %d %s", code, ct)
	}
	if code, ct, body := get("/debug/rtkit/rtkit.js"); code != 200 || !strings.HasPrefix(ct, "text/javascript") || !strings.Contains(body, "RealtimeClient") {
		t.Fatalf("rtkit.js: %d %s", code, ct)
	}
	code, _, body := get("/debug/rtkit/snapshot.json")
	var s inspect.Snapshot
	if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil || len(s.Routes) != 1 {
		t.Fatalf("snapshot: %d %v %s", code, err, body)
	}
	if code, _, body := get("/debug/rtkit/live"); code != 200 || !strings.Contains(body, "sse") {
		t.Fatalf("negotiation: %d %s", code, body)
	}
	if code, _, _ := get("/debug/rtkit/other"); code != 404 {
		t.Fatalf("other: %d", code)
	}
}

// The page's route pushes a snapshot at once and then every Every.
func TestLivePushesSnapshots(t *testing.T) {
	r := newRoom(t)
	r.join(t, realtime.LongPoll)
	insp := inspect.New(&inspect.Options{Routes: []inspect.Route{{Name: "/room", Route: r.route}}, Every: 10 * time.Millisecond})
	defer insp.Shutdown(tctx(t))
	srv := httptest.NewServer(insp)
	defer srv.Close()
	cl, err := rtclient.Dial(tctx(t), srv.URL+"/live", &rtclient.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(1000, "")
	for i := range 3 {
		m, err := cl.Receive(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var s inspect.Snapshot
		if err := json.Unmarshal(m.Data, &s); err != nil || s.Routes[0].ByTransport["longpoll"] != 1 {
			t.Fatalf("snapshot %d: %v %s", i, err, m.Data)
		}
	}
}
