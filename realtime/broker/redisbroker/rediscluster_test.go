package redisbroker_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// clusterTopics have hash tags that would be empty or cut short without
// escaping, and ones that need none.
var clusterTopics = []string{"", "}x", "~a", "a{b}c", "room", "ünï code", "room:general"}

// startCluster starts three redis-server masters with cluster mode on
// free loopback ports (each also needs its port + 10000 for the cluster
// bus), joins them with redis-cli --cluster create, and returns a client
// once every node reports cluster_state:ok.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		t.Skip("redis-server or redis-cli not found on PATH: apt-get install redis-server")
	}
	dir := t.TempDir()
	var addrs []string
	for len(addrs) < 3 {
		port := clusterPort(t)
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprint("nodes-", port, ".conf")),
			"--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--dir", dir)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		if err := waitPing(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited); err != nil {
			t.Logf("redis-server on %d: %v; %s", port, err, out)
			continue // the port was taken meanwhile: another
		}
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// The slots propagate by gossip: poll every node's CLUSTER INFO.
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster not ok on %s: %s", a, info)
			}
			time.Sleep(50 * time.Millisecond) // polling for readiness, with a deadline
		}
		c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second})
	t.Cleanup(func() { cc.Close() })
	if err := cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	return cc
}

// clusterPort returns a free port whose cluster bus port is free too.
func clusterPort(t *testing.T) int {
	for range 100 {
		p := 20000 + rand.IntN(20000)
		l1, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

func waitPing(addr string, exited chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func newClusterBroker(t *testing.T, cc *redis.ClusterClient, o *redisbroker.Options) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(cc, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// On a three-master Redis Cluster, every operation works for topics whose
// keys land on every master: publish, live delivery, history, presence,
// expiry, and every key has a TTL.
func TestCluster(t *testing.T) {
	cc := startCluster(t)
	ctx := tctx(t)
	o := &redisbroker.Options{MemberTTL: 500 * time.Millisecond, Retention: time.Hour}
	b := newClusterBroker(t, cc, o)
	mb := topics.NewMemoryBroker(&topics.MemoryOptions{History: topics.DefaultHistory})
	slots := map[int64]bool{}
	for _, topic := range clusterTopics {
		col := newCollector()
		sub, err := b.Subscribe(ctx, topic, col.deliver)
		if err != nil {
			t.Fatalf("subscribe %q: %v", topic, err)
		}
		for i := 1; i <= 5; i++ {
			m := realtime.Text(fmt.Sprint(topic, i))
			seq, err := b.Publish(ctx, topic, m)
			mb.Publish(ctx, topic, m)
			if err != nil || seq != uint64(i) {
				t.Fatalf("publish %q: %d, %v", topic, seq, err)
			}
		}
		got := col.wait(t, 5)
		h, err := b.History(ctx, topic, 2, 0)
		hm, _ := mb.History(ctx, topic, 2, 0)
		if err != nil || h.Last != 5 || h.Gap || !sameEntries(h.Entries, hm.Entries) || !sameEntries(got[2:], hm.Entries) {
			t.Fatalf("history of %q: %+v, %v; live %+v", topic, h, err, got)
		}
		sub.Close()
		if err := b.SetMember(ctx, topic, topics.Member{ID: "m1", Info: []byte(`{"n":1}`)}); err != nil {
			t.Fatalf("set member %q: %v", topic, err)
		}
		if ms, err := b.Members(ctx, topic); err != nil || len(ms) != 1 {
			t.Fatalf("members of %q: %+v, %v", topic, ms, err)
		}
		for _, kind := range []string{"seq", "h", "members", "alive"} {
			key := clusterKey(topic, kind)
			ttl, err := cc.PTTL(ctx, key).Result()
			if err != nil || ttl <= 0 {
				t.Fatalf("TTL of %s: %v, %v", key, ttl, err)
			}
			slot, _ := cc.ClusterKeySlot(ctx, key).Result()
			slots[slot] = true
		}
	}
	if len(slots) < 3 {
		t.Fatalf("the topics' keys fell in %d slots", len(slots))
	}
}

// clusterKey is the broker's key (see the package doc) for the test's
// TTL check.
func clusterKey(topic, kind string) string {
	tag := topic
	if topic == "" || topic[0] == '}' || topic[0] == '~' {
		tag = "~" + topic
	}
	return "rtkit:{" + tag + "}:" + kind
}

// On the cluster too: a node that dies leaves its members; the surviving
// nodes' Topics publish their leave, once.
func TestClusterLeaveOnCrash(t *testing.T) {
	cc := startCluster(t)
	leaveOnCrash(t, func() *redisbroker.Broker {
		return newClusterBroker(t, cc, &redisbroker.Options{MemberTTL: 500 * time.Millisecond})
	})
}

func TestLeaveOnCrash(t *testing.T) {
	s := startRedis(t)
	leaveOnCrash(t, func() *redisbroker.Broker {
		return newBroker(t, s, &redisbroker.Options{MemberTTL: 500 * time.Millisecond})
	})
}

// leaveOnCrash joins a member on node A, stops A's broker as a crash
// would (no leave, no refresh), and waits for the leave on watchers of
// nodes B and C, which both sweep: each sees one leave, and nothing
// after it but the marker published next.
func leaveOnCrash(t *testing.T, newB func() *redisbroker.Broker) {
	ctx := tctx(t)
	ba := newB()
	tsA := topics.New(ba)
	rtA := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return tsA.Join(c, "room", 0, map[string]string{"name": "ada"})
	}}, inMemory)
	defer rtA.Shutdown(ctx)
	var watchers []*realtimetest.Client
	for range 2 {
		ts := topics.New(newB())
		rt := realtime.NewRoute(realtime.Funcs{OnMessage: roomHandler(ts)}, inMemory)
		defer rt.Shutdown(ctx)
		w, _ := realtimetest.DialRoute(rt, nil)
		w.SendText("room 0")
		watchers = append(watchers, w)
	}
	ada, _ := realtimetest.DialRoute(rtA, httptest.NewRequest("GET", "/", nil))
	for _, w := range watchers {
		if env := envOf(t, w); env.Presence != "diff" || len(env.Joins) != 1 || env.Joins[0].ID != ada.Conn().ID() {
			t.Fatalf("join: %+v", env)
		}
	}
	ba.Close()
	var once sync.Once
	for _, w := range watchers {
		env := envOf(t, w)
		if env.Presence != "diff" || len(env.Leaves) != 1 || env.Leaves[0].ID != ada.Conn().ID() || string(env.Leaves[0].Info) != `{"name":"ada"}` {
			t.Fatalf("leave: %+v", env)
		}
		once.Do(func() {
			// One leave in all: the next message is the marker.
			b := newB()
			if _, err := b.Publish(ctx, "room", realtime.Text("marker")); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, w := range watchers {
		if env := envOf(t, w); env.Data == nil || *env.Data != "marker" {
			t.Fatalf("after the leave: %+v", env)
		}
	}
}

func sameEntries(a, b []topics.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// A topic unused for Retention leaves Redis (its keys' TTL) and starts
// again at 1.
func TestTopicsAgeOut(t *testing.T) {
	s := startRedis(t)
	ctx := tctx(t)
	b := newBroker(t, s, &redisbroker.Options{Retention: 300 * time.Millisecond})
	for i := 1; i <= 3; i++ {
		if _, err := b.Publish(ctx, "old", realtime.Text("x")); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Client(t)
	// Expiry has no event to wait for: poll, with a deadline.
	for c.Exists(ctx, "rtkit:{old}:seq", "rtkit:{old}:h").Val() != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("keys did not expire")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if seq, err := b.Publish(ctx, "old", realtime.Text("again")); err != nil || seq != 1 {
		t.Fatalf("after ageing: %d, %v", seq, err)
	}
}
