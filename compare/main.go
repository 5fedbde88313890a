// Command compare measures rtkit's transports side by side on loopback and
// prints the transport table, the use-case table derived from it, and the
// toolkit's overhead against raw libraries measured in the same run:
//
//	go run ./compare [-conns 8] [-messages 50000] [-duration 10s] [-idle 2000] [-out compare/results] [-quick]
//
// The same handler (an echo that pushes N messages on "push N") is served
// over WebSocket, SSE with POSTs up, long-polling and request/response on
// one route, next to three baselines: a raw gorilla/websocket echo server,
// a minimal net/http SSE loop and r3labs/sse/v2's server. For each row:
//
//   - connect: p50 of the time from dialing a new TCP connection to the
//     connection being open (WebSocket handshake answered, SSE session event
//     or stream headers read, long-poll session opened, for request/response
//     the first POST answered);
//   - echo: p50 and p99 round trip of a 64-byte message with -conns clients
//     each keeping one message in flight, -messages round trips in all (SSE
//     and long-polling: a POST up, the echo down the stream or the held
//     poll; request/response: one POST per message);
//   - push: messages/s of -messages 64-byte payloads pushed to one client
//     as fast as it reads them;
//   - bytes: counted at the TCP level by the server's listener: to open a
//     connection, and per message up and down over 200 one-at-a-time round
//     trips, and down per pushed message;
//   - idle memory: server RSS (and heap, stacks) per idle connection with
//     -idle connections, in subprocesses, as compare/idlemem does;
//   - proxies: whether rtclient, forced onto the transport with short
//     timeouts, can connect and echo through a reverse proxy that refuses
//     upgrades and through one that buffers response bodies.
//
// The clients of the measured phases speak the wire protocol directly
// (gorilla's client, GET + sse.Reader, POSTs and polls), the same for rtkit
// and the baselines, so that ratios compare servers. Results go to stdout
// and, as Markdown, CSV and an SVG chart, to -out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rtkit/rtkit/compare/internal/harness"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Config says what to measure.
type Config struct {
	Exe          string        // the binary to re-execute for idle memory; it must dispatch on -role
	Conns        int           // echo clients
	Messages     int           // echo round trips in all, and messages pushed
	WireMessages int           // round trips (or pushes) whose bytes are counted
	Connects     int           // connections opened one by one for the connect time
	Idle         int           // idle connections per row
	PerIP        int           // idle connections per client source address
	Duration     time.Duration // cap per phase
	ProxyTimeout time.Duration // the client's upgrade and first-event timeouts behind a proxy
	Out          string        // directory for results.md, results.csv, results.svg; empty: none
	Args         []string      // the command line, for the report
	Progress     io.Writer
}

// defaults is the configuration of a plain `go run ./compare`.
func defaults() Config {
	return Config{Conns: 8, Messages: 50000, WireMessages: 200, Connects: 200, Idle: 2000, PerIP: 1000,
		Duration: 10 * time.Second, ProxyTimeout: 2 * time.Second, Out: filepath.Join("compare", "results")}
}

// quick shrinks every count for tests.
func (c *Config) quick() {
	c.Conns, c.Messages, c.WireMessages, c.Connects, c.Idle = 2, 200, 20, 10, 200
	c.ProxyTimeout = time.Second
}

// run is main with its arguments and streams, so that a test binary can
// play every role.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := defaults()
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "internal: server or client of the idle-memory phase")
	mode := fs.String("mode", "", "internal: the row the idle server or client plays")
	addr := fs.String("addr", "", "internal: the idle server's address, for the client")
	n := fs.Int("n", 0, "internal: idle connections the client opens")
	fs.IntVar(&cfg.PerIP, "per-ip", cfg.PerIP, "idle connections per client source address (127.0.0.2, 127.0.0.3, ...)")
	conns := fs.Int("conns", 0, fmt.Sprintf("echo clients (default %d)", cfg.Conns))
	messages := fs.Int("messages", 0, fmt.Sprintf("echo round trips in all, and messages pushed (default %d)", cfg.Messages))
	duration := fs.Duration("duration", 0, fmt.Sprintf("time cap of each phase (default %v)", cfg.Duration))
	idle := fs.Int("idle", 0, fmt.Sprintf("idle connections per row for the memory figure (default %d)", cfg.Idle))
	out := fs.String("out", cfg.Out, "directory for results.md, results.csv and results.svg (empty: do not write)")
	quick := fs.Bool("quick", false, "tiny counts, for tests (flags given explicitly still apply)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "compare: unexpected arguments %q\n", fs.Args())
		return 2
	}
	harness.RaiseFileLimit()
	var err error
	switch *role {
	case "server":
		err = idleServer(*mode, stdin, stdout)
	case "client":
		err = idleClient(*mode, *addr, *n, cfg.PerIP, stdin, stdout)
	case "":
		if *quick {
			cfg.quick()
		}
		for _, f := range []struct {
			v   int
			dst *int
		}{{*conns, &cfg.Conns}, {*messages, &cfg.Messages}, {*idle, &cfg.Idle}} {
			if f.v != 0 {
				*f.dst = f.v
			}
		}
		if *duration != 0 {
			cfg.Duration = *duration
		}
		cfg.Out, cfg.Args, cfg.Progress = *out, args, stderr
		if cfg.Exe, err = os.Executable(); err == nil {
			var rep *Report
			if rep, err = Run(context.Background(), cfg); err == nil {
				rep.WriteText(stdout)
				if cfg.Out != "" {
					err = rep.WriteFiles(cfg.Out)
					if err == nil {
						fmt.Fprintf(stderr, "compare: wrote %s\n", filepath.Join(cfg.Out, "results.{md,csv,svg}"))
					}
				}
			}
		}
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "compare: %v\n", err)
		return 1
	}
	return 0
}

// validate checks a configuration.
func (c *Config) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"-conns", c.Conns}, {"-messages", c.Messages}, {"-idle", c.Idle}, {"-per-ip", c.PerIP}, {"wire messages", c.WireMessages}, {"connects", c.Connects}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", f.name, f.v))
		}
	}
	if c.Duration <= 0 || c.ProxyTimeout <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.PerIP > 0 && (c.Idle+c.PerIP-1)/c.PerIP > 250 {
		errs = append(errs, fmt.Errorf("-idle %d needs more than 250 source addresses at -per-ip %d", c.Idle, c.PerIP))
	}
	if c.Messages < c.Conns {
		errs = append(errs, fmt.Errorf("-messages %d is fewer than -conns %d", c.Messages, c.Conns))
	}
	return errors.Join(errs...)
}

// idleParallel is how many rows measure their idle memory at once.
const idleParallel = 4

var progressMu sync.Mutex

// progress writes a line to cfg.Progress.
func progress(cfg *Config, format string, args ...any) {
	if cfg.Progress != nil {
		progressMu.Lock()
		defer progressMu.Unlock()
		fmt.Fprintf(cfg.Progress, "compare: "+format+"\n", args...)
	}
}

// Run measures every row and derives the tables.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Config: cfg, Start: start, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		LoadAvg: loadAvg()}
	for _, t := range targets {
		rep.Rows = append(rep.Rows, &Row{Name: t.name, Baseline: t.baseline})
	}
	progress(&cfg, "connect, every row in turn")
	t0 := time.Now()
	if err := measureConnects(ctx, &cfg, rep.Rows); err != nil {
		return nil, err
	}
	progress(&cfg, "connect: done (%v)", time.Since(t0).Round(time.Millisecond))
	for i, t := range targets {
		r := rep.Rows[i]
		phases := []struct {
			name string
			on   bool
			f    func(context.Context, *Config, target, *Row) error
		}{
			{"echo", t.echo, measureEcho},
			{"push", t.push, measurePush},
			{"bytes", true, measureWire},
		}
		for _, p := range phases {
			if !p.on {
				continue
			}
			progress(&cfg, "%-11s %s", t.name, p.name)
			t0 := time.Now()
			if err := p.f(ctx, &cfg, t, r); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			progress(&cfg, "%-11s %s: %s", t.name, p.name, phaseSummary(p.name, r, time.Since(t0)))
		}
	}
	// Each row's idle memory is measured in processes of its own, so the
	// rows can share the time: a few at once.
	sem := make(chan struct{}, idleParallel)
	errs := make([]error, len(rep.Rows))
	var wg sync.WaitGroup
	for i, r := range rep.Rows {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			progress(&cfg, "%-11s idle memory, %d connections", r.Name, cfg.Idle)
			t0 := time.Now()
			if err := measureIdle(ctx, &cfg, r); err != nil {
				errs[i] = fmt.Errorf("%s: idle: %w", r.Name, err)
				return
			}
			progress(&cfg, "%-11s idle memory: %s", r.Name, phaseSummary("idle", r, time.Since(t0)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := measureProxies(ctx, &cfg, rep.Rows); err != nil {
		return nil, fmt.Errorf("proxies: %w", err)
	}
	rep.derive()
	rep.Elapsed = time.Since(start)
	progress(&cfg, "done in %v", rep.Elapsed.Round(100*time.Millisecond))
	return rep, nil
}

// phaseSummary describes what a phase measured, for the progress lines.
func phaseSummary(phase string, r *Row, took time.Duration) string {
	var s string
	switch phase {
	case "connect":
		s = fmt.Sprintf("p50 %s over %d connections", fmtDur(r.ConnectP50), r.Connects)
	case "echo":
		s = fmt.Sprintf("p50 %s, p99 %s over %d round trips", fmtDur(r.EchoP50), fmtDur(r.EchoP99), r.Echoes)
	case "push":
		s = fmt.Sprintf("%s msg/s over %d messages", fmtRate(r.PushRate), r.Pushed)
	case "bytes":
		s = fmt.Sprintf("open %s B, up %s B/msg, down %s B/msg", fmtNum(r.OpenBytes, 0), fmtNum(r.UpBytes, 1), fmtNum(r.DownBytes, 1))
	case "idle":
		s = fmt.Sprintf("%.1f KiB/conn RSS, %.1f heap, %.1f stack", r.IdleKiB, r.IdleHeapKiB, r.IdleStackKiB)
	}
	return fmt.Sprintf("%s (%v)", s, took.Round(time.Millisecond))
}

// loadAvg returns the 1, 5 and 15 minute load averages of the machine, or
// "" if unknown: the figures are only as steady as the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// rowNamed returns the row called name, or nil.
func (rep *Report) rowNamed(name string) *Row {
	for _, r := range rep.Rows {
		if r.Name == name {
			return r
		}
	}
	return nil
}
