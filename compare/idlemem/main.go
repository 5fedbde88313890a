// Command idlemem measures the server memory an idle connection costs:
// rtkit over WebSocket and over SSE against a raw gorilla/websocket server,
// in the same run.
//
//	go run ./compare/idlemem -n 8000 [-modes gorilla,websocket,sse]
//
// For each mode the command re-executes itself twice. A server process
// (-role server) listens on 127.0.0.1 and serves one of:
//
//   - gorilla: a raw gorilla/websocket server (1 KiB read buffer, 4 KiB
//     write buffers from a shared pool), one goroutine per connection
//     blocked in ReadMessage;
//   - websocket: an rtkit route on the WebSocket transport with a no-op
//     handler and the default options (pings every 25 s);
//   - sse: an rtkit route on the SSE transport with a no-op handler.
//
// A client process (-role client) opens -n connections from the source
// addresses 127.0.0.2, 127.0.0.3, ... (-per-ip connections each), reads the
// upgrade response or the SSE stream's first event (event: session), and
// holds them open until told to stop. Clients do not answer pings: a run
// measures within seconds, well inside the 25 s ping interval. Closing a
// client connection resets it, so that its port does not sit in TIME_WAIT.
//
// The two talk to this process over their stdin and stdout, one line at a
// time, and exit when their stdin closes, so they never outlive it. On the
// "measure" request the server runs runtime.GC and debug.FreeOSMemory and
// answers with its live connection count, VmRSS from /proc/self/status and
// runtime.MemStats' HeapInuse, StackInuse and Sys. The parent measures the
// server before the client connects and again once the server counts every
// connection, and prints the difference per connection, with the ratio of
// each mode to gorilla.
//
// Every process raises its RLIMIT_NOFILE soft limit to the hard limit.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/compare/internal/harness"
	"github.com/rtkit/rtkit/realtime"
)

// Modes, in the order they are measured by default.
var allModes = []string{"gorilla", "websocket", "sse"}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its arguments and streams, so that a test binary can
// play every role.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idlemem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "internal: server or client (empty: run the measurement)")
	mode := fs.String("mode", "", "internal: the server or client mode")
	addr := fs.String("addr", "", "internal: the server address, for the client")
	n := fs.Int("n", 8000, "connections to hold open")
	modes := fs.String("modes", strings.Join(allModes, ","), "comma-separated modes to measure: gorilla, websocket, sse")
	perIP := fs.Int("per-ip", 2000, "connections per client source address (127.0.0.2, 127.0.0.3, ...); at most 10000")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := harness.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "idlemem: raising the open-file limit: %v\n", err)
	}
	var err error
	switch *role {
	case "":
		var exe string
		if exe, err = os.Executable(); err == nil {
			cfg := Config{Exe: exe, N: *n, Modes: strings.Split(*modes, ","), PerIP: *perIP, Progress: stderr}
			var res []Result
			if res, err = Measure(context.Background(), cfg); err == nil {
				PrintTable(stdout, *n, res)
			}
		}
	case "server":
		err = serve(*mode, stdin, stdout)
	case "client":
		err = dial(*mode, *addr, *n, *perIP, stdin, stdout)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "idlemem: %v\n", err)
		return 1
	}
	return 0
}

// Stats is what the server reports on "measure".
type Stats struct {
	Conns int `json:"conns"`
	harness.Memory
}

// Result is one mode's measurement.
type Result struct {
	Mode         string
	Conns        int
	Before       Stats
	After        Stats
	ConnectTime  time.Duration
	RSSPerConn   float64 // KiB
	HeapPerConn  float64 // KiB
	StackPerConn float64 // KiB
	SysPerConn   float64 // KiB
}

// Config says what to measure.
type Config struct {
	Exe      string   // the binary to run as server and client; it must dispatch on -role
	N        int      // connections per mode
	Modes    []string // among allModes
	PerIP    int      // connections per client source address
	Progress io.Writer
	Timeout  time.Duration // per mode; zero means a minute
}

// Measure runs every mode of cfg in turn.
func Measure(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.N <= 0 {
		return nil, fmt.Errorf("-n must be positive")
	}
	if cfg.PerIP <= 0 || cfg.PerIP > 10000 {
		return nil, fmt.Errorf("-per-ip must be within 1..10000")
	}
	if (cfg.N+cfg.PerIP-1)/cfg.PerIP > 250 {
		return nil, fmt.Errorf("%d connections need more than 250 source addresses at -per-ip %d", cfg.N, cfg.PerIP)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	var out []Result
	for _, mode := range cfg.Modes {
		mode = strings.TrimSpace(mode)
		if !validMode(mode) {
			return out, fmt.Errorf("unknown mode %q (want %s)", mode, strings.Join(allModes, ", "))
		}
		mctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		r, err := measureMode(mctx, cfg, mode)
		cancel()
		if err != nil {
			return out, fmt.Errorf("%s: %w", mode, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func validMode(m string) bool {
	for _, v := range allModes {
		if m == v {
			return true
		}
	}
	return false
}

func measureMode(ctx context.Context, cfg Config, mode string) (Result, error) {
	progress := func(format string, args ...any) {
		fmt.Fprintf(cfg.Progress, "idlemem: %-9s "+format+"\n", append([]any{mode}, args...)...)
	}
	res := Result{Mode: mode, Conns: cfg.N}

	progress("starting server")
	srv, err := harness.Start(cfg.Exe, "-role", "server", "-mode", mode)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	addr, err := srv.Expect(ctx, "listening ")
	if err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	if res.Before, err = query(ctx, srv, "measure"); err != nil {
		return res, err
	}
	progress("baseline: RSS %.1f MiB, heap %.1f MiB, stack %.1f MiB",
		mib(res.Before.RSS), mib(res.Before.HeapInuse), mib(res.Before.StackInuse))

	progress("opening %d connections to %s", cfg.N, addr)
	t0 := time.Now()
	cli, err := harness.Start(cfg.Exe, "-role", "client", "-mode", mode, "-addr", addr,
		"-n", strconv.Itoa(cfg.N), "-per-ip", strconv.Itoa(cfg.PerIP))
	if err != nil {
		return res, err
	}
	defer cli.Stop()
	if _, err := cli.Expect(ctx, "ready "); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	// The client has its handshakes; wait for the server to count them all.
	var st Stats
	for {
		if st, err = query(ctx, srv, "count"); err != nil {
			return res, err
		}
		if st.Conns >= cfg.N {
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("the server counts %d of %d connections: %w", st.Conns, cfg.N, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	res.ConnectTime = time.Since(t0)
	progress("%d connections open in %v", st.Conns, res.ConnectTime.Round(time.Millisecond))

	if res.After, err = query(ctx, srv, "measure"); err != nil {
		return res, err
	}
	if res.After.Conns != cfg.N {
		return res, fmt.Errorf("the server counts %d connections, want %d", res.After.Conns, cfg.N)
	}
	per := func(after, before uint64) float64 {
		return (float64(after) - float64(before)) / 1024 / float64(cfg.N)
	}
	res.RSSPerConn = per(res.After.RSS, res.Before.RSS)
	res.HeapPerConn = per(res.After.HeapInuse, res.Before.HeapInuse)
	res.StackPerConn = per(res.After.StackInuse, res.Before.StackInuse)
	res.SysPerConn = per(res.After.Sys, res.Before.Sys)
	progress("measured: RSS %.1f MiB, heap %.1f MiB, stack %.1f MiB",
		mib(res.After.RSS), mib(res.After.HeapInuse), mib(res.After.StackInuse))

	progress("closing")
	if err := cli.Stop(); err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	if err := srv.Stop(); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	return res, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// PrintTable writes the per-connection figures and the ratios to gorilla.
func PrintTable(w io.Writer, n int, res []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "mode\tconns\tRSS KiB/conn\theap KiB/conn\tstack KiB/conn\tsys KiB/conn\tRSS MiB before\tRSS MiB after\t\n")
	var base *Result
	for i := range res {
		r := &res[i]
		if r.Mode == "gorilla" {
			base = r
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t\n", r.Mode, r.Conns,
			r.RSSPerConn, r.HeapPerConn, r.StackPerConn, r.SysPerConn, mib(r.Before.RSS), mib(r.After.RSS))
	}
	tw.Flush()
	if base == nil {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "ratio\tRSS\theap\tstack\t\n")
	ratio := func(a, b float64) string {
		if b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	for _, r := range res {
		if r.Mode == "gorilla" {
			continue
		}
		fmt.Fprintf(tw, "%s/gorilla\t%s\t%s\t%s\t\n", r.Mode,
			ratio(r.RSSPerConn, base.RSSPerConn), ratio(r.HeapPerConn, base.HeapPerConn), ratio(r.StackPerConn, base.StackPerConn))
	}
	tw.Flush()
}

// query sends a request to the server and decodes its stats.
func query(ctx context.Context, srv *harness.Child, req string) (Stats, error) {
	var st Stats
	if err := srv.Say(req); err != nil {
		return st, fmt.Errorf("server: %w", err)
	}
	l, err := srv.Expect(ctx, "stats ")
	if err != nil {
		return st, fmt.Errorf("server: %w", err)
	}
	return st, json.Unmarshal([]byte(l), &st)
}

// serve runs the server role: it prints "listening ADDR", then answers each
// "count" or "measure" line of stdin with "stats {json}", and returns when
// stdin ends.
func serve(mode string, stdin io.Reader, stdout io.Writer) error {
	var h http.Handler
	var count func() int
	switch mode {
	case "gorilla":
		h, count = gorillaServer()
	case "websocket", "sse":
		kind := realtime.WebSocket
		if mode == "sse" {
			kind = realtime.SSE
		}
		rt := realtime.NewRoute(realtime.Funcs{}, &realtime.Options{
			// Load from a few addresses: no caps.
			MaxConns: -1, MaxConnsPerClient: -1,
			Transports: []realtime.Transport{harness.Transport(kind)},
			Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		h, count = rt, rt.Len
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var st Stats
		switch sc.Text() {
		case "measure":
			st = Stats{Memory: harness.MeasureSelf()}
		case "count":
		default:
			fmt.Fprintf(stdout, "error unknown request %q\n", sc.Text())
			continue
		}
		st.Conns = count()
		b, _ := json.Marshal(st)
		fmt.Fprintf(stdout, "stats %s\n", b)
	}
	// The parent is gone or done: exit without waiting for the connections.
	ln.Close()
	return nil
}

// gorillaServer is the baseline: configured like rtkit's transport, with
// one goroutine per connection blocked in ReadMessage.
func gorillaServer() (http.Handler, func() int) {
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	var live atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		live.Add(1)
		defer live.Add(-1)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	return h, func() int { return int(live.Load()) }
}

// dial runs the client role: it opens n idle connections to addr, prints
// "ready N" (or "error ..." on failure), and closes them when stdin ends.
func dial(mode, addr string, n, perIP int, stdin io.Reader, stdout io.Writer) error {
	if !validMode(mode) {
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err := harness.CheckSources(n, perIP); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	// Stop, even in the middle of dialing, when the parent says so or goes
	// away.
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		defer cancel()
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if sc.Text() == "stop" {
				return
			}
		}
	}()
	conns, err := harness.DialAll(ctx, n, perIP, 64, func(ctx context.Context, _ int, src net.IP) (net.Conn, error) {
		return open(ctx, mode, addr, src)
	})
	if err != nil {
		fmt.Fprintf(stdout, "error %v\n", err)
		return err
	}
	defer harness.CloseAll(conns)
	fmt.Fprintf(stdout, "ready %d\n", n)
	<-stop // hold the connections
	return nil
}

// open makes one idle connection from source address src and returns its
// TCP connection once the server has answered: a WebSocket handshake, or
// an SSE stream read up to the end of its first event.
func open(ctx context.Context, mode, addr string, src net.IP) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	if mode == "sse" {
		return openSSE(ctx, d, addr)
	}
	wd := websocket.Dialer{
		NetDialContext:   d.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   256,
		WriteBufferSize:  256,
	}
	ws, resp, err := wd.DialContext(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	c := ws.UnderlyingConn()
	harness.ResetOnClose(c)
	return c, nil
}

// openSSE sends a GET for the event stream and reads the response up to the
// blank line that ends the session event. The stream is chunked; the chunk
// sizes are lines of their own and do not disturb the search.
func openSSE(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 1024)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return nil, fmt.Errorf("unexpected response %q", strings.TrimSpace(status))
	}
	inSession := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading the session event: %w", err)
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case l == "event: session":
			inSession = true
		case l == "" && inSession:
			c.SetDeadline(time.Time{})
			harness.ResetOnClose(c)
			ok = true
			return c, nil
		}
	}
}
