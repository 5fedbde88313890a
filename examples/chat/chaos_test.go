package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
)

// The chaos test runs three chat nodes as processes behind a round-robin
// proxy, with clients on every transport, and during the run kills a node
// with SIGKILL, restarts the broker and drops every client's connection
// at the proxy. Every message published reaches every client once and in
// order, a client away for longer than the history gets a gap, and
// presence converges on the clients that are there.
//
// Waits are on events (what a client received) with deadlines; polling
// with a deadline only where a process gives no event (a port that
// answers).

const (
	chaosHistory     = 64                     // -history of the nodes
	chaosPresenceTTL = 2 * time.Second        // -presence-ttl: a dead node's members leave within 2x
	chaosResume      = 2 * time.Second        // -resume-window
	chaosPing        = time.Second            // -ping-interval
	chaosBurst       = 20                     // messages published per step, within the history
	chaosWait        = 20 * time.Second       // the deadline of each wait
	chaosRoom        = "chaos"                // the room everyone joins
	chaosTopic       = "room:" + chaosRoom    // its topic
	chaosSecret      = "chaos shared secret"  // CHAT_SECRET of every node
	chaosTimeout     = 100 * time.Millisecond // polling interval for processes
)

func TestChaosNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	dir := t.TempDir()
	natsBin := goBuild(t, dir, "nats-server", "github.com/nats-io/nats-server/v2")
	chat := goBuild(t, dir, "chat", ".")
	port := freeTCPPort(t)
	store := filepath.Join(dir, "js")
	start := func() *process {
		return startProcess(t, "nats-server", natsBin, nil, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", store)
	}
	brokerURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	srv := start()
	waitTCP(t, port)
	nc, err := nats.Connect(brokerURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := natsbroker.New(nc, &natsbroker.Options{History: chaosHistory, PresenceTTL: chaosPresenceTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	chaos(t, chat, brokerURL, b, func() {
		srv.kill()
		srv = start()
		waitTCP(t, port)
	})
}

func TestChaosRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH: apt-get install redis-server")
	}
	dir := t.TempDir()
	chat := goBuild(t, dir, "chat", ".")
	port := freeTCPPort(t)
	start := func() *process {
		// appendfsync always: what Redis acknowledged survives the kill.
		return startProcess(t, "redis-server", redisBin, nil, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
	}
	srv := start()
	waitTCP(t, port)
	brokerURL := fmt.Sprintf("redis://127.0.0.1:%d", port)
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	b, err := redisbroker.New(client, &redisbroker.Options{History: chaosHistory, MemberTTL: chaosPresenceTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	chaos(t, chat, brokerURL, b, func() {
		srv.kill()
		srv = start()
		waitTCP(t, port)
	})
}

// chaos runs the scenario against three nodes of the chat binary on
// brokerURL; b is the test's own broker (to publish with), and
// restartBroker kills the broker's process and starts it again with its
// data.
func chaos(t *testing.T, chat, brokerURL string, b topics.Broker, restartBroker func()) {
	began := time.Now()
	env := append(os.Environ(), "CHAT_SECRET="+chaosSecret)
	args := []string{"-addr", "127.0.0.1:0", "-broker", brokerURL,
		"-history", strconv.Itoa(chaosHistory), "-presence-ttl", chaosPresenceTTL.String(), "-resume-window", chaosResume.String(),
		// A request relayed to a node that dies is noticed by the client's
		// keepalive only (pingInterval + pongTimeout): keep it short.
		"-ping-interval", chaosPing.String()}
	var nodes []*process
	var backends []*url.URL
	for i := range 3 {
		p := startProcess(t, fmt.Sprint("chat", i), chat, env, args...)
		nodes = append(nodes, p)
		u, err := url.Parse(strings.TrimSuffix(p.waitURL(t), "/"))
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, u)
	}
	px := startProxy(t, backends)
	ts := topics.New(b)

	kinds := []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	var clients []*chaosClient
	for i, k := range append(kinds, kinds...) {
		clients = append(clients, startClient(t, px.url, fmt.Sprint(k, "-", i), k, 0))
	}
	sleeper := startClient(t, px.url, "sleeper", realtime.WebSocket, 0)
	everyone := append(slices.Clone(clients), sleeper)
	waitRosters(t, everyone, everyone)
	t.Logf("%v: %d clients joined through the proxy", time.Since(began).Round(time.Millisecond), len(everyone))

	pub := &publisher{t: t, ts: ts, acked: map[uint64]string{}}
	pub.burst(chaosBurst)
	waitAll(t, everyone, pub.last)
	sleeperAt := sleeper.lastSeq()
	sleeper.stop()

	nodes[1].kill() // kill -9
	px.down(1)
	pub.burst(chaosBurst)
	waitAll(t, clients, pub.last)
	t.Logf("%v: node 1 killed; all clients caught up", time.Since(began).Round(time.Millisecond))

	restartBroker()
	pub.burst(chaosBurst) // retried until the broker is back
	waitAll(t, clients, pub.last)
	t.Logf("%v: broker restarted; all clients caught up", time.Since(began).Round(time.Millisecond))

	px.dropAll()
	pub.burst(chaosBurst)
	waitAll(t, clients, pub.last)
	t.Logf("%v: proxy connections dropped; all clients caught up", time.Since(began).Round(time.Millisecond))

	// More than the history since the sleeper left: it gets a gap.
	pub.burst(chaosHistory)
	waitAll(t, clients, pub.last)
	back := startClient(t, px.url, "sleeper", realtime.WebSocket, sleeperAt)
	waitAll(t, []*chaosClient{back}, pub.last)

	// Presence converges on who is there: every client once, the killed
	// node's members and the dropped connections gone.
	present := append(slices.Clone(clients), back)
	waitRosters(t, present, present)
	t.Logf("%v: presence converged", time.Since(began).Round(time.Millisecond))

	for _, c := range clients {
		c.check(t, pub, 0, false)
	}
	back.check(t, pub, sleeperAt, true)
}

// goBuild builds pkg into dir/name with the go command that runs the
// test.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitTCP waits until a port accepts connections: a process that starts
// gives no event to wait for.
func waitTCP(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(chaosWait)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d: %v", port, err)
		}
		time.Sleep(chaosTimeout) // polling a port, with a deadline
	}
}

// process is a child process whose output goes to the test log.
type process struct {
	name   string
	cmd    *exec.Cmd
	urls   chan string
	exited chan struct{}
	once   sync.Once
}

func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), urls: make(chan string, 1), exited: make(chan struct{})}
	p.cmd.Env = env
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		w.Close()
		close(p.exited)
	}()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if _, u, ok := strings.Cut(line, ": open "); ok && strings.HasPrefix(u, "http") {
				select {
				case p.urls <- u:
				default:
				}
			}
			if testing.Verbose() && !strings.Contains(line, "INFO") {
				fmt.Fprintf(os.Stderr, "%s: %s\n", name, line)
			}
		}
	}()
	t.Cleanup(p.kill)
	return p
}

// waitURL returns the URL a chat node printed.
func (p *process) waitURL(t *testing.T) string {
	t.Helper()
	select {
	case u := <-p.urls:
		return u
	case <-p.exited:
		t.Fatalf("%s exited", p.name)
	case <-time.After(chaosWait):
		t.Fatalf("%s printed no URL", p.name)
	}
	return ""
}

// kill sends SIGKILL and waits for the process to go.
func (p *process) kill() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
}

// proxy is a round-robin reverse proxy: each request (each WebSocket
// upgrade) goes to the next backend that is up. A backend that refuses a
// connection is marked down, as a load balancer's health check would.
type proxy struct {
	url      string
	backends []*httputil.ReverseProxy
	next     atomic.Uint64
	mu       sync.Mutex
	isDown   []bool
	conns    map[net.Conn]struct{}
}

func startProxy(t *testing.T, backends []*url.URL) *proxy {
	p := &proxy{isDown: make([]bool, len(backends)), conns: map[net.Conn]struct{}{}}
	for i, u := range backends {
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.FlushInterval = -1 // streams (SSE) flow at once
		rp.ErrorLog = nil
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "dial" {
				p.down(i)
			}
			w.WriteHeader(http.StatusBadGateway)
		}
		p.backends = append(p.backends, rp)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "http://" + l.Addr().String()
	hs := &http.Server{Handler: p, ConnState: p.track}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for range len(p.backends) {
		i := int(p.next.Add(1) % uint64(len(p.backends)))
		p.mu.Lock()
		down := p.isDown[i]
		p.mu.Unlock()
		if !down {
			p.backends[i].ServeHTTP(w, r)
			return
		}
	}
	w.WriteHeader(http.StatusBadGateway)
}

func (p *proxy) down(i int) {
	p.mu.Lock()
	p.isDown[i] = true
	p.mu.Unlock()
}

// track remembers the clients' connections, hijacked ones included.
func (p *proxy) track(c net.Conn, s http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s {
	case http.StateNew:
		p.conns[c] = struct{}{}
	case http.StateClosed:
		delete(p.conns, c)
	}
}

// dropAll cuts every client connection the proxy holds.
func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// publisher publishes bursts through the test's own Topics, retrying a
// message until the broker takes it; acked is what the broker
// acknowledged, tried what was sent at all (a publish whose answer was
// lost may have been stored).
type publisher struct {
	t     *testing.T
	ts    *topics.Topics
	n     int
	last  uint64
	acked map[uint64]string
	tried []string
}

func (p *publisher) burst(n int) {
	p.t.Helper()
	deadline := time.Now().Add(chaosWait)
	for range n {
		p.n++
		text := fmt.Sprint("m", p.n)
		data, _ := json.Marshal(post{From: "publisher", Text: text})
		p.tried = append(p.tried, text)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			seq, err := p.ts.Publish(ctx, chaosTopic, realtime.Text(string(data)))
			cancel()
			if err == nil {
				p.acked[seq], p.last = text, seq
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("publish %s: %v", text, err)
			}
			time.Sleep(50 * time.Millisecond) // the broker is restarting: retry after a pause
		}
	}
}

// chaosClient is one user: an rtclient connection on one transport that
// joins the room and rejoins after the last seq it saw whenever it finds
// itself on a new server connection.
type chaosClient struct {
	name   string
	conn   *rtclient.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	seqs    []uint64      // messages received, in order
	texts   []string
	gaps    []uint64 // gap envelopes' after
	roster  roster
	last    uint64
	err     error
}

func startClient(t *testing.T, base, name string, k realtime.Kind, after uint64) *chaosClient {
	t.Helper()
	resp, err := http.Post(base+"/login", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if login.Token == "" {
		t.Fatalf("login %s: %s", name, resp.Status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := rtclient.Dial(ctx, base+"/chat", &rtclient.Options{
		Token: login.Token, Transports: []realtime.Kind{k},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnState: func(s rtclient.State, k realtime.Kind, err error) {
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "client %s: %v %v %v\n", name, s, k, err)
			}
		},
	})
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v", name, err)
	}
	c := &chaosClient{name: name, conn: conn, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}), roster: roster{}, last: after}
	t.Cleanup(c.stop)
	c.join(ctx)
	go c.run(ctx)
	return c
}

func (c *chaosClient) join(ctx context.Context) {
	c.mu.Lock()
	after := c.last
	c.mu.Unlock()
	c.conn.SendJSON(ctx, command{Join: chaosRoom, After: after}) // queued while reconnecting
}

func (c *chaosClient) run(ctx context.Context) {
	defer close(c.done)
	for {
		m, err := c.conn.Receive(ctx)
		var gap *rtclient.GapError
		switch {
		case errors.As(err, &gap):
			if !gap.NewConnection {
				// Messages lost inside one session: the subscription
				// is still there, so leave and join again to resume.
				c.conn.SendJSON(ctx, command{Leave: chaosRoom})
			}
			c.join(ctx)
			continue
		case err != nil:
			c.mu.Lock()
			if ctx.Err() == nil {
				c.err = err
			}
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		var env topics.Envelope
		if json.Unmarshal(m.Data, &env) != nil || env.Topic != chaosTopic {
			continue
		}
		c.mu.Lock()
		switch {
		case env.Gap != nil:
			c.gaps = append(c.gaps, env.Gap.After)
			c.last = env.Gap.After
		case env.Presence != "":
			c.roster.apply(env)
			if env.Seq > c.last {
				c.last = env.Seq // a diff: a topic message too
			}
		case env.Seq > c.last:
			var p post
			json.Unmarshal([]byte(*env.Data), &p)
			c.seqs, c.texts, c.last = append(c.seqs, env.Seq), append(c.texts, p.Text), env.Seq
		default:
			// At or below what it has: a duplicate would show in seqs.
			c.seqs = append(c.seqs, env.Seq)
			c.texts = append(c.texts, "duplicate")
		}
		c.notifyLocked()
		c.mu.Unlock()
	}
}

func (c *chaosClient) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *chaosClient) lastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// stop closes the connection and waits for the client's goroutine.
func (c *chaosClient) stop() {
	c.conn.Close(realtime.CloseNormal, "")
	c.cancel()
	<-c.done
}

// until waits for cond (under the client's lock) or fails after
// chaosWait.
func (c *chaosClient) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(chaosWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, err, ch := cond(), c.err, c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("%s: no %s within %v: last %d, roster %v, gaps %v", c.name, what, chaosWait, c.last, c.roster.names(), c.gaps)
		}
	}
}

// waitAll waits until every client has received up to seq.
func waitAll(t *testing.T, cs []*chaosClient, seq uint64) {
	t.Helper()
	for _, c := range cs {
		c.until(t, fmt.Sprint("message ", seq), func() bool { return c.last >= seq })
	}
}

// waitRosters waits until every client of cs lists each of want once.
func waitRosters(t *testing.T, cs, want []*chaosClient) {
	t.Helper()
	var names []string
	for _, w := range want {
		names = append(names, w.name)
	}
	slices.Sort(names)
	for _, c := range cs {
		c.until(t, fmt.Sprint("roster ", names), func() bool { return slices.Equal(c.roster.names(), names) })
	}
}

// check asserts what c received: every message published after from,
// each once, in order, with the text published under its seq; with
// wantGap, a gap first and then the kept messages, without one no gap at
// all. (Presence diffs take seqs too, and a joiner skips those before its
// presence state: message seqs are in order, not contiguous.)
func (c *chaosClient) check(t *testing.T, p *publisher, from uint64, wantGap bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	first := from + 1
	if wantGap {
		if len(c.gaps) != 1 || c.gaps[0] != from {
			t.Fatalf("%s: gaps %v, want one after %d", c.name, c.gaps, from)
		}
		if len(c.seqs) == 0 || c.seqs[0] <= from+1 || p.last-c.seqs[0]+1 > chaosHistory {
			t.Fatalf("%s: after the gap got %v", c.name, c.seqs)
		}
		first = c.seqs[0]
	} else if len(c.gaps) != 0 {
		t.Fatalf("%s: gaps %v within the history window", c.name, c.gaps)
	}
	seen := map[string]bool{}
	for i, seq := range c.seqs {
		if i > 0 && seq <= c.seqs[i-1] {
			t.Fatalf("%s: seq %d after %d (a duplicate or out of order): %v", c.name, seq, c.seqs[i-1], c.seqs)
		}
		if text, ok := p.acked[seq]; ok && c.texts[i] != text {
			t.Fatalf("%s: seq %d is %q, published as %q", c.name, seq, c.texts[i], text)
		}
		if !slices.Contains(p.tried, c.texts[i]) || seen[c.texts[i]] {
			t.Fatalf("%s: seq %d is %q: never published, or twice", c.name, seq, c.texts[i])
		}
		seen[c.texts[i]] = true
	}
	if c.last < p.last {
		t.Fatalf("%s: last %d, published %d", c.name, c.last, p.last)
	}
	for seq, text := range p.acked {
		if seq >= first && !seen[text] {
			t.Fatalf("%s: never got seq %d (%s)", c.name, seq, text)
		}
	}
}
