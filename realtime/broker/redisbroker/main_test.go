package redisbroker_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
)

// exampleRedis is the address of the redis-server that TestMain starts
// for the Example functions, which cannot start one themselves (they have
// no testing.TB) and cannot skip.
var exampleRedis string

// TestMain starts a redis-server for the examples when there is one on
// PATH, and otherwise leaves the examples out (unless -run asks for them)
// so that the tests still run, each skipping what needs Redis. After the
// run it checks for leaked goroutines as goleak.VerifyTestMain does:
// go-redis starts no background goroutines that outlive a closed client
// and its closed PubSubs, so no goleak ignores are needed.
func TestMain(m *testing.M) {
	flag.Parse()
	stop, err := startExampleRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisbroker:", err)
		os.Exit(1)
	}
	if stop == nil {
		// Examples cannot skip themselves: leave them out of the run.
		skip := "^Example"
		if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
			skip = f.Value.String() + "|" + skip
		}
		flag.Set("test.skip", skip)
		fmt.Fprintln(os.Stderr, "redisbroker: redis-server not on PATH (apt-get install redis-server): skipping the examples")
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startExampleRedis starts a redis-server on a free loopback port, with
// its data in a temporary directory, and sets exampleRedis. It returns a
// nil stop when redis-server is not on PATH.
func startExampleRedis() (stop func(), err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "redisbroker-example")
	if err != nil {
		return nil, err
	}
	s := &redisServer{path: path, dir: dir}
	// Another process may take the free port before redis-server binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freeLoopbackPort(); err == nil {
			err = s.Start()
		}
		if err == nil {
			break
		}
		if attempt == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	exampleRedis = s.Addr()
	return func() {
		s.Kill()
		os.RemoveAll(dir)
	}, nil
}

// redisServer is a redis-server process on a free loopback port, with its
// data (an append-only file) in a test's temporary directory, so that it
// can be killed and started again with its history.
type redisServer struct {
	t    testing.TB
	path string
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

// startRedis starts a redis-server for the test and stops it at cleanup.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH: apt-get install redis-server")
	}
	s := &redisServer{t: t, path: path, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	// Another process may take the free port before redis-server binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		err := s.Start()
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatal(err)
		}
	}
}

func freePort(t testing.TB) int {
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server (again, on the same port and directory) and
// waits until it answers PING.
//
// The server writes and fsyncs its append-only file before it answers a
// write (appendfsync always), so that what it acknowledged survives Kill.
// With the default, everysec, it answers writes that it holds back while
// an fsync is in progress (a busy disk makes that up to two seconds) and
// a kill loses them: a restarted server would not have "the same data".
func (s *redisServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.out, s.exited = cmd, out, exited

	// Readiness has no event to wait for: poll PING until a deadline.
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		tick := time.NewTimer(20 * time.Millisecond)
		select {
		case <-exited:
			tick.Stop()
			return fmt.Errorf("redis-server exited: %s", out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server not ready: %v; %s", err, out.String())
		}
	}
}

// Kill kills the server, as a crash would, and waits for it to exit.
func (s *redisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Client returns a client of the server, closed at cleanup.
func (s *redisServer) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// newBroker returns a broker on its own client of s, closed at cleanup
// (before the client).
func newBroker(t testing.TB, s *redisServer, o *redisbroker.Options) *redisbroker.Broker {
	t.Helper()
	c := s.Client(t)
	b, err := redisbroker.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// collector gathers a subscription's deliveries.
type collector struct {
	mu      sync.Mutex
	entries []topics.Entry
	notify  chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) deliver(e topics.Entry) {
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait returns the entries once there are at least n.
func (c *collector) wait(t testing.TB, n int) []topics.Entry {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.entries) >= n {
			out := append([]topics.Entry(nil), c.entries...)
			c.mu.Unlock()
			return out
		}
		got := len(c.entries)
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("got %d entries, want %d", got, n)
		}
	}
}
