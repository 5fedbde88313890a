package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config says what to measure.
type Config struct {
	Exe          string   // the binary to re-execute as server and client; it must dispatch on -role
	Rounds       int      // rounds of echo, connect and push
	HeavyRounds  int      // rounds of idle and fan-out, whose measurements take seconds each
	Peers        []string // columns to measure besides the baselines; empty: all
	Workloads    []string // among workloadNames; empty: all
	EchoConns    int
	EchoDuration time.Duration
	EchoWarm     time.Duration
	Idle         int // idle connections per measurement
	PerIP        int // connections per client source address
	Fanout       int // fan-out subscribers
	Burst        int // messages of the burst
	Paced        int // messages sent one at a time
	Connects     int // timed connections per measurement
	Push         int // messages pushed down the stream
	Timeout      time.Duration
	Out          string   // directory for results.md and results.csv; empty: none
	Args         []string // the command line, for the report
	Progress     io.Writer
}

// defaults is the configuration of a plain `go run .`.
func defaults() Config {
	return Config{
		Rounds: 5, HeavyRounds: 3, EchoConns: 50, EchoDuration: time.Second, EchoWarm: 250 * time.Millisecond,
		Idle: 8000, PerIP: 2000, Fanout: 10000, Burst: 50, Paced: 20, Connects: 300, Push: 50000,
		Timeout: 2 * time.Minute, Out: "results",
	}
}

// quick shrinks every count, for tests.
func (c *Config) quick() {
	c.Rounds, c.HeavyRounds, c.EchoConns, c.EchoDuration, c.EchoWarm = 3, 3, 4, 100*time.Millisecond, 20*time.Millisecond
	c.Idle, c.PerIP, c.Fanout, c.Burst, c.Paced, c.Connects, c.Push = 100, 50, 100, 5, 3, 20, 500
	c.Timeout = time.Minute
}

func (c *Config) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"-rounds", c.Rounds}, {"-heavy-rounds", c.HeavyRounds}, {"-echo-conns", c.EchoConns}, {"-idle", c.Idle}, {"-per-ip", c.PerIP}, {"-fanout", c.Fanout},
		{"-burst", c.Burst}, {"-paced", c.Paced}, {"-connects", c.Connects}, {"-push", c.Push}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", f.name, f.v))
		}
	}
	if c.EchoDuration <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("-echo-duration and -timeout must be positive"))
	}
	for _, n := range []int{c.Idle, c.Fanout} {
		if c.PerIP > 0 && (n+c.PerIP-1)/c.PerIP > 250 {
			errs = append(errs, fmt.Errorf("%d connections need more than 250 source addresses at -per-ip %d", n, c.PerIP))
		}
	}
	for _, p := range c.Peers {
		if _, ok := peerNamed(p); !ok {
			errs = append(errs, fmt.Errorf("unknown server %q", p))
		}
	}
	for _, w := range c.Workloads {
		if !slices.Contains(workloadNames(), w) {
			errs = append(errs, fmt.Errorf("unknown workload %q (want one of %s)", w, strings.Join(workloadNames(), ", ")))
		}
	}
	return errors.Join(errs...)
}

// workload is one measured setting: what the processes do, on which
// servers.
type workload struct {
	name    string // as -workloads names it
	kind    string // the processes' -workload
	size    int    // message bytes
	ws, sse bool   // which servers it runs on
	heavy   bool   // HeavyRounds rounds, not Rounds
	measure func(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error)
}

// workloads in the order they run.
var workloads = []workload{
	{name: "echo-64", kind: wlEcho, size: 64, ws: true, measure: func(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
		return measureEcho(ctx, cfg, p, name, 64)
	}},
	{name: "echo-1024", kind: wlEcho, size: 1024, ws: true, measure: func(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
		return measureEcho(ctx, cfg, p, name, 1024)
	}},
	{name: "connect", kind: wlConnect, size: 64, ws: true, measure: measureConnect},
	{name: "idle", kind: wlIdle, ws: true, sse: true, heavy: true, measure: measureIdle},
	{name: "fanout", kind: wlFanout, size: 64, ws: true, heavy: true, measure: measureFanout},
	{name: "push", kind: wlPush, size: 64, sse: true, measure: measurePush},
}

func workloadNames() []string {
	var names []string
	for _, w := range workloads {
		names = append(names, w.name)
	}
	return names
}

// Results are every measurement of a run.
type Results struct {
	Config     Config
	Start      time.Time
	Elapsed    time.Duration
	GoVersion  string
	NumCPU     int
	GOMAXPROCS int
	LoadAvg    string
	Revision   string // the rtkit tree measured, as git describes it at the start
	// By workload, then server: one entry per round (nil where it failed).
	Runs   map[string]map[string][]metrics
	Errors map[string]map[string][]string // the failures, by workload and server
	// Peers are the measured columns, in table order.
	Peers []string
}

// selected reports whether peer name is measured.
func (c *Config) selected(name string) bool {
	return name == "gorilla" || name == "nethttp-sse" || len(c.Peers) == 0 || slices.Contains(c.Peers, name)
}

// Run measures every workload, the servers taking turns in each round.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &Results{Config: cfg, Start: time.Now(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvg: loadAvg(), Revision: revision(),
		Runs: map[string]map[string][]metrics{}, Errors: map[string]map[string][]string{}}
	for _, p := range peers {
		if cfg.selected(p.name) {
			res.Peers = append(res.Peers, p.name)
		}
	}
	for _, w := range workloads {
		if len(cfg.Workloads) > 0 && !slices.Contains(cfg.Workloads, w.name) {
			continue
		}
		var names []string
		for _, p := range peers {
			if cfg.selected(p.name) && (p.sse && w.sse || !p.sse && w.ws) {
				names = append(names, p.name)
			}
		}
		res.Runs[w.name], res.Errors[w.name] = map[string][]metrics{}, map[string][]string{}
		t0 := time.Now()
		rounds := cfg.Rounds
		if w.heavy {
			rounds = cfg.HeavyRounds
		}
		for r := range rounds {
			// Round r starts at server r: A B C, B C A, C A B, ...
			for i := range names {
				name := names[(r+i)%len(names)]
				m, err := measureOne(ctx, &cfg, w, name)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.Runs[w.name][name] = append(res.Runs[w.name][name], m)
				if err != nil {
					res.Errors[w.name][name] = append(res.Errors[w.name][name], fmt.Sprintf("round %d: %v", r+1, err))
					progress(&cfg, "%-9s round %d %-11s failed: %v", w.name, r+1, name, err)
					continue
				}
				progress(&cfg, "%-9s round %d %-11s %s", w.name, r+1, name, m.String())
			}
		}
		progress(&cfg, "%-9s done in %v", w.name, time.Since(t0).Round(100*time.Millisecond))
	}
	res.Elapsed = time.Since(res.Start)
	return res, nil
}

// String lists the figures in name order.
func (m metrics) String() string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%.4g", k, m[k])
	}
	return b.String()
}

func progress(cfg *Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "peers: "+format+"\n", args...)
	}
}

// revision describes the rtkit tree this binary was most likely built
// from: the commit checked out at the start, and whether the library
// (realtime/, transports/) had uncommitted changes. "" outside a git
// checkout.
func revision() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := "commit " + strings.TrimSpace(string(head))
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return rev
	}
	root := strings.TrimSpace(string(top))
	dirty, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "realtime", "transports").Output()
	if err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
		rev += " with uncommitted changes under realtime/ or transports/"
	}
	return rev
}

// loadAvg returns the machine's 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}
