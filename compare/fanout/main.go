// Command fanout measures topic fan-out on one node: how many deliveries
// per second a realtime route makes when one published message goes to
// every one of -n subscribers, and what sharing the encoding saves against
// encoding the same bytes once per connection, in the same run.
//
//	go run ./compare/fanout -n 10000 -messages 50 [-transport sse] [-cpuprofile prof]
//
// For each mode the command re-executes itself twice. A server process
// (-role server) serves an rtkit route (WebSocket, or SSE with -transport
// sse) whose OnOpen subscribes every connection to topic "t" of one
// topics.Topics. On the parent's word it sends -messages messages of
// -size bytes to every connection, in one of two modes:
//
//   - shared: Topics.Publish, the normal path. The topic builds each
//     envelope once and marks it realtime.Shared, so the transport encodes
//     it once (a gorilla PreparedMessage, an SSE event body) for every
//     connection.
//   - perconn: the baseline. The server encodes every message afresh for
//     every connection of the route (an unshared envelope per connection)
//     and sends it with Conn.Send, connection by connection as Topics
//     queues a burst, so that only the encoding differs.
//
// A client process (-role client) opens the -n connections from 127.0.0.2,
// 127.0.0.3, ... (-per-ip connections each), reads each on a goroutine of
// its own and checks that every connection receives seq 1, 2, ... -messages
// of topic "t", each once and in order. It says "done" when all of them
// have every message.
//
// The parent times from the publish command to the client's "done" and
// asks the server for the CPU time (user+sys, getrusage) it spent over
// that span. With both processes on the same cores, the clients' reading
// competes with the server: server CPU per delivery is the steadier figure,
// wall-clock deliveries per second the more tangible one. A connection that
// the server closes during the run (a send queue overflow, say) fails the
// run. Afterwards the server shuts the route down, which flushes every
// queue and closes every connection, and the client checks that no
// connection received anything more.
//
// The processes talk to the parent over their stdin and stdout, one line
// at a time, and exit when their stdin closes. Every process raises its
// RLIMIT_NOFILE soft limit to the hard limit.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/compare/internal/harness"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports/sse"
)

// Modes, in the order they run by default.
const (
	modeShared  = "shared"
	modePerConn = "perconn"
)

// topicName is the one topic every connection subscribes to.
const topicName = "t"

// sendQueue is the routes' Options.SendQueue: room for a whole burst, so
// the default overflow policy (close) never fires on a healthy client.
const sendQueue = 1024

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its arguments and streams, so that a test binary can
// play every role.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "internal: server or client (empty: run the measurement)")
	addr := fs.String("addr", "", "internal: the server address, for the client")
	transport := fs.String("transport", "websocket", "websocket or sse")
	n := fs.Int("n", 10000, "subscribed connections")
	messages := fs.Int("messages", 50, "messages published per mode")
	size := fs.Int("size", 100, "bytes of each message's data (the envelope adds about 30)")
	modes := fs.String("modes", modeShared+","+modePerConn, "comma-separated modes: shared, perconn")
	perIP := fs.Int("per-ip", 2000, "connections per client source address (127.0.0.2, 127.0.0.3, ...)")
	cpuProfile := fs.String("cpuprofile", "", "write the server's CPU profile of each mode's delivery to FILE.MODE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := harness.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "fanout: raising the open-file limit: %v\n", err)
	}
	var err error
	switch *role {
	case "":
		var exe string
		if exe, err = os.Executable(); err == nil {
			cfg := Config{
				Exe: exe, Transport: *transport, N: *n, Messages: *messages, Size: *size,
				Modes: strings.Split(*modes, ","), PerIP: *perIP, CPUProfile: *cpuProfile, Progress: stderr,
			}
			var res []Result
			res, err = Measure(context.Background(), cfg)
			if len(res) > 0 {
				PrintReport(stdout, cfg, res)
			}
		}
	case "server":
		err = serve(serverConfig{transport: *transport, n: *n, messages: *messages, size: *size, cpuProfile: *cpuProfile}, stdin, stdout)
	case "client":
		err = dial(clientConfig{transport: *transport, addr: *addr, n: *n, messages: *messages, perIP: *perIP}, stdin, stdout)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fanout: %v\n", err)
		return 1
	}
	return 0
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// writeSyscalls is the process's write system calls so far (syscw in
// /proc/self/io; 0 if unavailable).
func writeSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// payload is message i's data: size bytes that start with its number.
func payload(i, size int) string {
	head := "m" + strconv.Itoa(i) + "-"
	if len(head) >= size {
		return head
	}
	return head + strings.Repeat("x", size-len(head))
}

// envelopeBytes is what Topics sends a subscriber for message i: the
// baseline sends the very same bytes.
func envelopeBytes(i, size int) []byte {
	data := payload(i, size)
	b, _ := json.Marshal(topics.Envelope{Topic: topicName, Seq: uint64(i), Data: &data})
	return b
}

// ---------------------------------------------------------------------
// Parent

// Config says what to measure.
type Config struct {
	Exe        string // the binary to run as server and client; it must dispatch on -role
	Transport  string // websocket or sse
	N          int    // subscribed connections
	Messages   int    // messages per mode
	Size       int    // bytes of data per message
	Modes      []string
	PerIP      int    // connections per client source address
	CPUProfile string // server CPU profile path prefix, or empty
	Progress   io.Writer

	// Phase deadlines; zero means the defaults below.
	ConnectTimeout time.Duration // start both processes and subscribe N connections: 60 s
	DeliverTimeout time.Duration // publish until every delivery arrived: 60 s
	CloseTimeout   time.Duration // shut down and check the aftermath: 30 s
}

// ServerStats is the server's answer to "stats".
type ServerStats struct {
	Conns      int           `json:"conns"`      // live connections
	Subscribed int           `json:"subscribed"` // OnOpen subscriptions made
	Closed     int           `json:"closed"`     // connections closed before the shutdown
	FirstClose string        `json:"firstClose"` // the cause of the first of those
	User       time.Duration `json:"user"`       // CPU since the publish command
	Sys        time.Duration `json:"sys"`
	Enqueue    time.Duration `json:"enqueue"` // the publish loop's own wall time
	Writes     int64         `json:"writes"`  // write system calls since the publish command
}

// ClientReport is the client's answer on "done", "status" and "final".
type ClientReport struct {
	Conns      int           `json:"conns"`      // connections opened
	Complete   int           `json:"complete"`   // connections that have every message
	Deliveries int64         `json:"deliveries"` // messages received, all connections
	Errors     int64         `json:"errors"`     // order, duplicate, format and early-end errors
	FirstError string        `json:"firstError"` // the first of those
	Ended      int           `json:"ended"`      // connections whose reader has ended ("final")
	CPU        time.Duration `json:"cpu"`        // user+sys since "ready"
}

// Result is one mode's measurement.
type Result struct {
	Mode       string
	Deliveries int64 // N × Messages
	Connect    time.Duration
	Wall       time.Duration // publish command to the client's "done"
	Server     ServerStats
	Client     ClientReport // at "done"
	Final      ClientReport // after the shutdown
}

// PerSecond is the delivery rate over the wall time.
func (r Result) PerSecond() float64 { return float64(r.Deliveries) / r.Wall.Seconds() }

// ServerCPUPerDelivery is the server's user+sys time per delivery.
func (r Result) ServerCPUPerDelivery() time.Duration {
	return (r.Server.User + r.Server.Sys) / time.Duration(max(r.Deliveries, 1))
}

// ClientCPUPerDelivery is the client's user+sys time per delivery.
func (r Result) ClientCPUPerDelivery() time.Duration {
	return r.Client.CPU / time.Duration(max(r.Deliveries, 1))
}

// Measure runs every mode of cfg in turn, each with fresh processes. It
// returns the results so far with the first error.
func Measure(ctx context.Context, cfg Config) ([]Result, error) {
	switch {
	case cfg.N <= 0 || cfg.Messages <= 0 || cfg.Size <= 0:
		return nil, errors.New("-n, -messages and -size must be positive")
	case cfg.PerIP <= 0 || cfg.PerIP > 2000:
		return nil, errors.New("-per-ip must be within 1..2000")
	case (cfg.N+cfg.PerIP-1)/cfg.PerIP > 250:
		return nil, fmt.Errorf("%d connections need more than 250 source addresses at -per-ip %d", cfg.N, cfg.PerIP)
	case cfg.Messages >= sendQueue:
		return nil, fmt.Errorf("-messages must stay below the send queue, %d", sendQueue)
	case cfg.Transport != "websocket" && cfg.Transport != "sse":
		return nil, fmt.Errorf("unknown transport %q (want websocket or sse)", cfg.Transport)
	}
	for i, m := range cfg.Modes {
		cfg.Modes[i] = strings.TrimSpace(m)
		if cfg.Modes[i] != modeShared && cfg.Modes[i] != modePerConn {
			return nil, fmt.Errorf("unknown mode %q (want shared or perconn)", m)
		}
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, time.Minute)
	cfg.DeliverTimeout = orDefault(cfg.DeliverTimeout, time.Minute)
	cfg.CloseTimeout = orDefault(cfg.CloseTimeout, 30*time.Second)
	var out []Result
	for _, mode := range cfg.Modes {
		r, err := measureMode(ctx, cfg, mode)
		if err != nil {
			return out, fmt.Errorf("%s: %w", mode, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func measureMode(ctx context.Context, cfg Config, mode string) (Result, error) {
	progress := func(format string, args ...any) {
		fmt.Fprintf(cfg.Progress, "fanout: %s %-7s "+format+"\n", append([]any{cfg.Transport, mode}, args...)...)
	}
	res := Result{Mode: mode, Deliveries: int64(cfg.N) * int64(cfg.Messages)}
	common := []string{"-transport", cfg.Transport, "-n", strconv.Itoa(cfg.N),
		"-messages", strconv.Itoa(cfg.Messages), "-size", strconv.Itoa(cfg.Size)}

	// Phase 1: both processes up, every connection subscribed.
	phase, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	srvArgs := append([]string{"-role", "server"}, common...)
	if cfg.CPUProfile != "" {
		srvArgs = append(srvArgs, "-cpuprofile", cfg.CPUProfile+"."+mode)
	}
	srv, err := harness.Start(cfg.Exe, srvArgs...)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	addr, err := srv.Expect(phase, "listening ")
	if err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	progress("opening %d connections to %s", cfg.N, addr)
	t0 := time.Now()
	cli, err := harness.Start(cfg.Exe, append([]string{"-role", "client", "-addr", addr, "-per-ip", strconv.Itoa(cfg.PerIP)}, common...)...)
	if err != nil {
		return res, err
	}
	defer cli.Stop()
	if _, err := cli.Expect(phase, "ready "); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if _, err := srv.Expect(phase, "subscribed "); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	res.Connect = time.Since(t0)
	progress("%d connections subscribed in %v", cfg.N, res.Connect.Round(time.Millisecond))

	// Phase 2: publish, and wait until the client has every delivery.
	phase, cancel = context.WithTimeout(ctx, cfg.DeliverTimeout)
	defer cancel()
	start := time.Now()
	if err := srv.Say("publish " + mode); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	done, err := cli.Expect(phase, "done ")
	res.Wall = time.Since(start)
	if err != nil {
		err = fmt.Errorf("client: %w", err)
		// Say how far it got, if it still answers.
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		if cli.Say("status") == nil {
			if st, serr := cli.Expect(sctx, "status "); serr == nil {
				err = fmt.Errorf("%w; client status %s", err, st)
			}
		}
		if srv.Say("stats") == nil {
			if st, serr := srv.Expect(sctx, "stats "); serr == nil {
				err = fmt.Errorf("%w; server stats %s", err, st)
			}
		}
		return res, err
	}
	if err := json.Unmarshal([]byte(done), &res.Client); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if err := srv.Say("stats"); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	st, err := srv.Expect(phase, "stats ")
	if err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	if err := json.Unmarshal([]byte(st), &res.Server); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	progress("%d deliveries in %v: %.0f/s, server CPU %v (%v per delivery)", res.Deliveries,
		res.Wall.Round(time.Millisecond), res.PerSecond(), (res.Server.User + res.Server.Sys).Round(time.Millisecond), res.ServerCPUPerDelivery())
	if res.Server.Closed > 0 {
		return res, fmt.Errorf("the server closed %d connections during the run, the first for %s", res.Server.Closed, res.Server.FirstClose)
	}
	if res.Client.Errors > 0 {
		return res, fmt.Errorf("the client saw %d errors, the first: %s", res.Client.Errors, res.Client.FirstError)
	}

	// Phase 3: shut the route down and check that nothing more arrived.
	phase, cancel = context.WithTimeout(ctx, cfg.CloseTimeout)
	defer cancel()
	if err := srv.Say("shutdown"); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	if _, err := srv.Expect(phase, "shut"); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	if err := cli.Say("final"); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	final, err := cli.Expect(phase, "final ")
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if err := json.Unmarshal([]byte(final), &res.Final); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if f := res.Final; f.Errors > 0 || f.Deliveries != res.Deliveries || f.Complete != cfg.N || f.Ended != cfg.N {
		return res, fmt.Errorf("after the shutdown the client counts %d deliveries (want %d), %d of %d connections complete and %d ended, %d errors (first: %s)",
			f.Deliveries, res.Deliveries, f.Complete, cfg.N, f.Ended, f.Errors, f.FirstError)
	}
	if err := cli.Stop(); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if err := srv.Stop(); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	return res, nil
}

// PrintReport writes each mode's figures and the ratios between them.
func PrintReport(w io.Writer, cfg Config, res []Result) {
	env := len(envelopeBytes(cfg.Messages, cfg.Size))
	fmt.Fprintf(w, "fan-out over %s: %d subscribers, %d messages of %d bytes (envelope %d bytes), %d deliveries per mode\n\n",
		cfg.Transport, cfg.N, cfg.Messages, cfg.Size, env, int64(cfg.N)*int64(cfg.Messages))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "mode\tdeliveries\twall ms\tdeliveries/s\tserver CPU ms\tserver CPU ns/delivery\tclient CPU ns/delivery\tserver writes/delivery\tenqueue ms\tclosed\t\n")
	byMode := map[string]Result{}
	for _, r := range res {
		byMode[r.Mode] = r
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%d\t%d\t%.2f\t%.0f\t%d\t\n", r.Mode, r.Deliveries,
			ms(r.Wall), r.PerSecond(), ms(r.Server.User+r.Server.Sys),
			r.ServerCPUPerDelivery().Nanoseconds(), r.ClientCPUPerDelivery().Nanoseconds(),
			float64(r.Server.Writes)/float64(max(r.Deliveries, 1)), ms(r.Server.Enqueue), r.Server.Closed)
	}
	tw.Flush()
	s, ok1 := byMode[modeShared]
	p, ok2 := byMode[modePerConn]
	if !ok1 || !ok2 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "shared/perconn deliveries/s:          %.2f\n", s.PerSecond()/p.PerSecond())
	fmt.Fprintf(w, "perconn/shared server CPU/delivery:   %.2f  (shared uses %.0f%% of perconn's server CPU per delivery)\n",
		float64(p.ServerCPUPerDelivery())/float64(max(s.ServerCPUPerDelivery(), 1)),
		100*float64(s.ServerCPUPerDelivery())/float64(max(p.ServerCPUPerDelivery(), 1)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lineWriter serialises lines written from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lineWriter) printf(format string, args ...any) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	fmt.Fprintf(lw.w, format+"\n", args...)
}

func (lw *lineWriter) json(prefix string, v any) {
	b, _ := json.Marshal(v)
	lw.printf("%s %s", prefix, b)
}

// ---------------------------------------------------------------------
// Server

type serverConfig struct {
	transport  string
	n          int
	messages   int
	size       int
	cpuProfile string
}

// serve runs the server role. It prints "listening ADDR", then
// "subscribed N" once N connections are subscribed, and answers stdin:
//
//	publish MODE   send the messages; answers "published"
//	stats          answers "stats {ServerStats}"
//	shutdown       shuts the route down; answers "shut"
//
// It returns when stdin ends.
func serve(cfg serverConfig, stdin io.Reader, stdout io.Writer) error {
	kind := realtime.WebSocket
	switch cfg.transport {
	case "websocket":
	case "sse":
		kind = realtime.SSE
	default:
		return fmt.Errorf("unknown transport %q", cfg.transport)
	}
	out := &lineWriter{w: stdout}
	ts := topics.New(nil)
	var (
		subscribed atomic.Int64
		shutting   atomic.Bool
		closeMu    sync.Mutex
		closed     int
		firstClose string
	)
	h := realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			if err := ts.Subscribe(c, topicName); err != nil {
				return err
			}
			if subscribed.Add(1) == int64(cfg.n) {
				out.printf("subscribed %d", cfg.n)
			}
			return nil
		},
		OnClose: func(c *realtime.Conn, err error) {
			if shutting.Load() {
				return
			}
			closeMu.Lock()
			defer closeMu.Unlock()
			if closed++; closed == 1 {
				firstClose = fmt.Sprint(err)
			}
		},
	}
	rt := realtime.NewRoute(h, &realtime.Options{
		// Load from a few addresses: no caps.
		MaxConns: -1, MaxConnsPerClient: -1,
		Transports: []realtime.Transport{harness.Transport(kind)},
		SendQueue:  sendQueue,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	hs := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	out.printf("listening %s", ln.Addr())

	var (
		user0, sys0 time.Duration
		writes0     int64
		enqueue     time.Duration
		profiling   bool
	)
	stopProfile := func() {
		if profiling {
			pprof.StopCPUProfile()
			profiling = false
		}
	}
	defer stopProfile()
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "publish":
			if cfg.cpuProfile != "" {
				f, err := os.Create(cfg.cpuProfile)
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					out.printf("error cpuprofile: %v", err)
					continue
				}
				profiling = true
			}
			user0, sys0 = cpuTime()
			writes0 = writeSyscalls()
			t := time.Now()
			if err := publish(arg, ts, rt, cfg.messages, cfg.size); err != nil {
				out.printf("error publish: %v", err)
				continue
			}
			enqueue = time.Since(t)
			out.printf("published")
		case "stats":
			stopProfile()
			user, sys := cpuTime()
			writes := writeSyscalls() - writes0
			closeMu.Lock()
			st := ServerStats{Conns: rt.Len(), Subscribed: int(subscribed.Load()), Closed: closed, FirstClose: firstClose,
				User: user - user0, Sys: sys - sys0, Enqueue: enqueue, Writes: writes}
			closeMu.Unlock()
			out.json("stats", st)
		case "shutdown":
			shutting.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := rt.Shutdown(ctx)
			cancel()
			if err != nil {
				out.printf("error shutdown: %v", err)
				continue
			}
			out.printf("shut")
		default:
			out.printf("error unknown request %q", sc.Text())
		}
	}
	// The parent is done or gone: exit without waiting for connections.
	return nil
}

// publish sends every subscriber messages 1..n in the given mode.
func publish(mode string, ts *topics.Topics, rt *realtime.Route, n, size int) error {
	switch mode {
	case modeShared:
		for i := 1; i <= n; i++ {
			seq, err := ts.Publish(context.Background(), topicName, realtime.Text(payload(i, size)))
			if err != nil {
				return err
			}
			if seq != uint64(i) {
				return fmt.Errorf("message %d published as seq %d", i, seq)
			}
		}
	case modePerConn:
		// Every connection encodes its own copy of every message (a
		// fresh, unshared envelope), queued connection by connection as
		// Topics queues a burst, so that only the encoding differs. A
		// closed connection is counted by OnClose.
		for _, c := range rt.Conns() {
			for i := 1; i <= n; i++ {
				c.Send(realtime.Text(string(envelopeBytes(i, size))))
			}
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

// ---------------------------------------------------------------------
// Client

type clientConfig struct {
	transport string
	addr      string
	n         int
	messages  int
	perIP     int
}

// seqCheck follows one connection's stream of envelopes: seq 1, 2, ...
// want of topic "t", each once.
type seqCheck struct {
	want  int
	count int
	last  uint64
}

var envelopePrefix = []byte(`{"topic":"` + topicName + `","seq":`)

// observe checks the next message.
func (s *seqCheck) observe(msg []byte) error {
	s.count++
	rest, ok := bytes.CutPrefix(msg, envelopePrefix)
	if !ok {
		return fmt.Errorf("message %d is not an envelope of topic %q: %.60q", s.count, topicName, msg)
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return fmt.Errorf("message %d: no data after the seq: %.60q", s.count, msg)
	}
	seq, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	if err != nil {
		return fmt.Errorf("message %d: bad seq: %.60q", s.count, msg)
	}
	prev := s.last
	s.last = seq
	switch {
	case seq != prev+1:
		return fmt.Errorf("message %d has seq %d after %d", s.count, seq, prev)
	case s.count > s.want:
		return fmt.Errorf("message %d is one more than the %d published", s.count, s.want)
	}
	return nil
}

// done reports whether every message has arrived.
func (s *seqCheck) done() bool { return s.count == s.want }

// clientState is what the client's readers share.
type clientState struct {
	cfg        clientConfig
	out        *lineWriter
	deliveries atomic.Int64
	complete   atomic.Int64
	errors     atomic.Int64
	ended      atomic.Int64
	errMu      sync.Mutex
	firstError string
	allDone    chan struct{}
	cpu0       time.Duration
}

func (cs *clientState) fail(i int, err error) {
	if cs.errors.Add(1) == 1 {
		cs.errMu.Lock()
		cs.firstError = fmt.Sprintf("connection %d: %v", i, err)
		cs.errMu.Unlock()
	}
}

// read feeds connection i's messages, as next returns them, to a seqCheck
// until next fails.
func (cs *clientState) read(i int, next func() ([]byte, error)) {
	defer cs.ended.Add(1)
	chk := seqCheck{want: cs.cfg.messages}
	for {
		msg, err := next()
		if err != nil {
			if !chk.done() {
				// It ended short: the run cannot complete.
				cs.fail(i, fmt.Errorf("ended after %d of %d messages: %v", chk.count, chk.want, err))
				cs.out.printf("error connection %d ended after %d of %d messages: %v", i, chk.count, chk.want, err)
			}
			return
		}
		cs.deliveries.Add(1)
		if err := chk.observe(msg); err != nil {
			cs.fail(i, err)
		}
		if chk.done() && cs.complete.Add(1) == int64(cs.cfg.n) {
			close(cs.allDone)
		}
	}
}

func (cs *clientState) report() ClientReport {
	user, sys := cpuTime()
	cs.errMu.Lock()
	defer cs.errMu.Unlock()
	return ClientReport{
		Conns: cs.cfg.n, Complete: int(cs.complete.Load()), Deliveries: cs.deliveries.Load(),
		Errors: cs.errors.Load(), FirstError: cs.firstError, Ended: int(cs.ended.Load()),
		CPU: user + sys - cs.cpu0,
	}
}

// dial runs the client role: it opens n connections to addr and prints
// "ready N", then "done {ClientReport}" once every connection has every
// message. It answers "status" with "status {ClientReport}", and "final",
// once the server has closed every connection, with "final
// {ClientReport}" after every reader ended. It returns when stdin ends.
func dial(cfg clientConfig, stdin io.Reader, stdout io.Writer) error {
	if cfg.transport != "websocket" && cfg.transport != "sse" {
		return fmt.Errorf("unknown transport %q", cfg.transport)
	}
	if err := harness.CheckSources(cfg.n, cfg.perIP); err != nil {
		return err
	}
	cs := &clientState{cfg: cfg, out: &lineWriter{w: stdout}, allDone: make(chan struct{})}

	// Read stdin from the start, so that its end interrupts the dialing.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		defer cancel()
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
	}()

	var readers sync.WaitGroup
	conns, err := harness.DialAll(ctx, cfg.n, cfg.perIP, 64, func(ctx context.Context, i int, src net.IP) (net.Conn, error) {
		c, nextMsg, err := connect(ctx, cfg, src)
		if err == nil {
			readers.Go(func() { cs.read(i, nextMsg) })
		}
		return c, err
	})
	if err != nil {
		cs.out.printf("error %v", err)
		return err
	}
	defer harness.CloseAll(conns)
	user, sys := cpuTime()
	cs.cpu0 = user + sys
	cs.out.printf("ready %d", cfg.n)

	allDone := cs.allDone
	for {
		select {
		case <-allDone:
			allDone = nil
			cs.out.json("done", cs.report())
		case cmd, ok := <-cmds:
			if !ok {
				return nil
			}
			switch cmd {
			case "status":
				cs.out.json("status", cs.report())
			case "final":
				// The server has shut the route down: every stream ends.
				ended := make(chan struct{})
				go func() { readers.Wait(); close(ended) }()
				t := time.NewTimer(20 * time.Second)
				select {
				case <-ended:
				case <-t.C:
				}
				t.Stop()
				cs.out.json("final", cs.report())
			default:
				cs.out.printf("error unknown request %q", cmd)
			}
		}
	}
}

// connect opens one connection from source address src and returns it
// with a function that returns its next message.
func connect(ctx context.Context, cfg clientConfig, src net.IP) (net.Conn, func() ([]byte, error), error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	if cfg.transport == "sse" {
		return connectSSE(ctx, d, cfg.addr)
	}
	wd := websocket.Dialer{
		NetDialContext:   d.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  256,
	}
	ws, resp, err := wd.DialContext(ctx, "ws://"+cfg.addr+"/", nil)
	if err != nil {
		return nil, nil, err
	}
	resp.Body.Close()
	c := ws.UnderlyingConn()
	harness.ResetOnClose(c)
	var buf []byte
	return c, func() ([]byte, error) {
		_, r, err := ws.NextReader()
		if err != nil {
			return nil, err
		}
		buf, err = readInto(buf[:0], r)
		return buf, err
	}, nil
}

// readInto appends all of r to buf.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// connectSSE opens an event stream and skips its session event; the
// function it returns yields the data of each "message" event and fails
// at the end of the stream.
func connectSSE(ctx context.Context, d *net.Dialer, addr string) (net.Conn, func() ([]byte, error), error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	harness.ResetOnClose(c)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(c); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 2048), req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	rd := sse.NewReader(resp.Body)
	ev, err := rd.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the session event: %w", err)
	}
	if ev.Type != sse.EventSession {
		return nil, nil, fmt.Errorf("first event %q, want %q", ev.Type, sse.EventSession)
	}
	c.SetDeadline(time.Time{})
	ok = true
	return c, func() ([]byte, error) {
		for {
			ev, err := rd.Next()
			if err != nil {
				return nil, err
			}
			switch ev.Type {
			case "message":
				return ev.Data, nil
			case sse.EventClose:
				return nil, fmt.Errorf("closed by the server: %s", ev.Data)
			default:
				return nil, fmt.Errorf("unexpected %q event: %s", ev.Type, ev.Data)
			}
		}
	}, nil
}
