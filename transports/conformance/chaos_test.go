package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// dropListener remembers its connections so that a test can cut them as a
// flaky network would.
type dropListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *dropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// dropOne closes a random live connection.
func (l *dropListener) dropOne(r *rand.Rand) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) == 0 {
		return
	}
	i := r.IntN(len(l.conns))
	l.conns[i].Close()
	l.conns = append(l.conns[:i], l.conns[i+1:]...)
}

// chaosNode is one node of the cluster: a route with topics over the
// shared broker, on a listener that can drop connections and restart.
type chaosNode struct {
	t      *testing.T
	broker *topics.MemoryBroker
	addr   string

	mu    sync.Mutex
	ln    *dropListener
	srv   *http.Server
	route *realtime.Route
	ts    *topics.Topics
}

func (n *chaosNode) start() {
	ln, err := net.Listen("tcp", n.addr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ts := topics.New(n.broker)
	route := realtime.NewRoute(realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var join struct {
			Topic string
			After uint64
		}
		if err := m.Decode(&join); err != nil {
			return err
		}
		return ts.Resume(c, join.Topic, join.After)
	}}, &realtime.Options{
		Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
		Relay:      n.broker,
		Logger:     quietLogger(),
	})
	dl := &dropListener{Listener: ln}
	srv := &http.Server{Handler: route}
	go srv.Serve(dl)
	n.mu.Lock()
	n.ln, n.srv, n.route, n.ts = dl, srv, route, ts
	n.mu.Unlock()
}

// stop shuts the node down: its clients see 1001 and reconnect.
func (n *chaosNode) stop() {
	n.mu.Lock()
	srv, route := n.srv, n.route
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	route.Shutdown(ctx)
	srv.Close()
}

func (n *chaosNode) listener() *dropListener {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ln
}

// subscriber follows one topic through every reconnect: it joins after the
// last seq it saw whenever it lands on a new server connection.
type subscriber struct {
	c      *rtclient.Conn
	seen   []uint64
	rejoin int // new server connections it had to rejoin on
	err    error
}

func (s *subscriber) run(ctx context.Context, topic string, want uint64) {
	join := func(after uint64) error {
		return s.c.SendJSON(ctx, map[string]any{"topic": topic, "after": after})
	}
	if s.err = join(0); s.err != nil {
		return
	}
	last := uint64(0)
	for last < want {
		m, err := s.c.Receive(ctx)
		var gap *rtclient.GapError
		switch {
		case errors.As(err, &gap):
			if gap.NewConnection {
				s.rejoin++
				if s.err = join(last); s.err != nil {
					return
				}
			}
			continue
		case err != nil:
			s.err = err
			return
		}
		var env topics.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			s.err = err
			return
		}
		if env.Gap != nil {
			s.err = fmt.Errorf("topic gap after %d", env.Gap.After)
			return
		}
		s.seen = append(s.seen, env.Seq)
		last = env.Seq
	}
}

// Clients on two nodes follow a topic while the network drops their
// connections at random and one node restarts mid-stream: every
// subscriber sees every message of the history window exactly once and in
// order, whatever transport it is on.
func TestChaosTopicsSurviveDropsAndRestart(t *testing.T) {
	const messages = 200
	broker := topics.NewMemoryBroker(&topics.MemoryOptions{History: 1000})
	nodes := []*chaosNode{{t: t, broker: broker, addr: "127.0.0.1:0"}, {t: t, broker: broker, addr: "127.0.0.1:0"}}
	for _, n := range nodes {
		n.start()
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var subs []*subscriber
	var wg sync.WaitGroup
	for i, k := range []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll, realtime.WebSocket, realtime.SSE, realtime.LongPoll} {
		n := nodes[i%2]
		c, err := rtclient.Dial(ctx, "http://"+n.addr+"/", &rtclient.Options{
			Transports: []realtime.Kind{k},
			MinBackoff: 5 * time.Millisecond,
			MaxBackoff: 50 * time.Millisecond,
			SendQueue:  64,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(realtime.CloseNormal, "")
		s := &subscriber{c: c}
		subs = append(subs, s)
		wg.Add(1)
		go func() { defer wg.Done(); s.run(ctx, "news", messages) }()
	}

	r := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(2 * time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	for i := 1; i <= messages; i++ {
		<-tick.C
		if _, err := nodes[0].ts.Publish(ctx, "news", realtime.Text(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i%15 == 0 {
			nodes[r.IntN(2)].listener().dropOne(r)
		}
		if i == messages/2 {
			nodes[1].stop() // a node restarts mid-stream
			nodes[1].start()
		}
	}
	wg.Wait()
	rejoins := 0
	for _, s := range subs {
		rejoins += s.rejoin
	}
	t.Logf("%d rejoins on new server connections", rejoins)
	if rejoins == 0 {
		t.Fatal("no subscriber landed on a new connection: the chaos did nothing")
	}
	for i, s := range subs {
		if s.err != nil {
			t.Fatalf("subscriber %d: %v (saw %d)", i, s.err, len(s.seen))
		}
		for j, seq := range s.seen {
			if seq != uint64(j+1) {
				t.Fatalf("subscriber %d: message %d has seq %d: lost or repeated", i, j+1, seq)
			}
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
