package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rtkit/rtkit/compare/internal/harness"
)

// Workloads.
const (
	wlEcho    = "echo"
	wlIdle    = "idle"
	wlFanout  = "fanout"
	wlConnect = "connect"
	wlPush    = "push"
)

// metrics is one measurement's figures by name.
type metrics map[string]float64

// pair is the two processes of one measurement.
type pair struct {
	srv, cli *harness.Child
	addr     string
}

// stop ends both processes.
func (p *pair) stop() error {
	var errs []error
	if p.cli != nil {
		errs = append(errs, p.cli.Stop())
	}
	if p.srv != nil {
		errs = append(errs, p.srv.Stop())
	}
	return errors.Join(errs...)
}

// startServer starts the server process of peer name for workload.
func startServer(ctx context.Context, cfg *Config, name, workload string, size int) (*pair, error) {
	srv, err := harness.Start(cfg.Exe, "-role", "server", "-server", name, "-workload", workload, "-size", strconv.Itoa(size))
	if err != nil {
		return nil, err
	}
	p := &pair{srv: srv}
	if p.addr, err = srv.Expect(ctx, "listening "); err != nil {
		p.stop()
		return nil, fmt.Errorf("server: %w", err)
	}
	return p, nil
}

// startClient starts the client process and waits for its "ready".
func (p *pair) startClient(ctx context.Context, cfg *Config, name, workload string, args ...string) error {
	all := append([]string{"-role", "client", "-server", name, "-workload", workload, "-addr", p.addr,
		"-per-ip", strconv.Itoa(cfg.PerIP)}, args...)
	cli, err := harness.Start(cfg.Exe, all...)
	if err != nil {
		return err
	}
	p.cli = cli
	if _, err := cli.Expect(ctx, "ready"); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// serverStats sends the server req ("stats", "measure") and decodes its
// answer.
func (p *pair) serverStats(ctx context.Context, req string) (ServerStats, error) {
	var st ServerStats
	if err := p.srv.Say(req); err != nil {
		return st, fmt.Errorf("server: %w", err)
	}
	l, err := p.srv.Expect(ctx, "stats ")
	if err != nil {
		return st, fmt.Errorf("server: %w", err)
	}
	return st, json.Unmarshal([]byte(l), &st)
}

// ask sends a process a line and returns the rest of the answer line
// that starts with prefix.
func ask(ctx context.Context, c *harness.Child, line, prefix string) (string, error) {
	if err := c.Say(line); err != nil {
		return "", err
	}
	return c.Expect(ctx, prefix)
}

// mark starts the server's CPU and byte counts afresh.
func (p *pair) mark(ctx context.Context) error {
	if _, err := ask(ctx, p.srv, "mark", "marked"); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// waitConns polls the server until it counts n connections.
func (p *pair) waitConns(ctx context.Context, n int) error {
	for {
		st, err := p.serverStats(ctx, "stats")
		if err != nil {
			return err
		}
		if st.Conns >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server counts %d of %d connections: %w", st.Conns, n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// measureOne runs one measurement of workload on peer name with fresh
// processes, bounded by cfg.Timeout.
func measureOne(ctx context.Context, cfg *Config, w workload, name string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	p, err := startServer(ctx, cfg, name, w.kind, w.size)
	if err != nil {
		return nil, err
	}
	m, err := w.measure(ctx, cfg, p, name)
	if serr := p.stop(); err == nil && serr != nil {
		err = serr
	}
	return m, err
}

func measureEcho(ctx context.Context, cfg *Config, p *pair, name string, size int) (metrics, error) {
	if err := p.startClient(ctx, cfg, name, wlEcho, "-size", strconv.Itoa(size), "-n", strconv.Itoa(cfg.EchoConns),
		"-duration", cfg.EchoDuration.String(), "-warm", cfg.EchoWarm.String()); err != nil {
		return nil, err
	}
	if err := p.mark(ctx); err != nil {
		return nil, err
	}
	var res EchoResult
	l, err := ask(ctx, p.cli, "go", "result ")
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := json.Unmarshal([]byte(l), &res); err != nil {
		return nil, err
	}
	st, err := p.serverStats(ctx, "stats")
	if err != nil {
		return nil, err
	}
	if res.Count == 0 {
		return nil, errors.New("no echo")
	}
	return metrics{
		"rate": float64(res.Count) / res.Elapsed.Seconds(),
		"p50":  micros(res.P50),
		"p99":  micros(res.P99),
		"cpu":  micros(st.CPU) / float64(res.Count),
	}, nil
}

func measureConnect(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
	if err := p.startClient(ctx, cfg, name, wlConnect, "-size", "64", "-n", strconv.Itoa(cfg.Connects)); err != nil {
		return nil, err
	}
	if err := p.mark(ctx); err != nil {
		return nil, err
	}
	var res EchoResult
	l, err := ask(ctx, p.cli, "go", "result ")
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := json.Unmarshal([]byte(l), &res); err != nil {
		return nil, err
	}
	st, err := p.serverStats(ctx, "stats")
	if err != nil {
		return nil, err
	}
	return metrics{"p50": micros(res.P50), "p99": micros(res.P99), "cpu": micros(st.CPU) / float64(res.Count)}, nil
}

// idleQuiet is how long the idle connections stay quiet before the
// server's memory is measured.
const idleQuiet = 2 * time.Second

func measureIdle(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
	before, err := p.serverStats(ctx, "measure")
	if err != nil {
		return nil, err
	}
	if err := p.startClient(ctx, cfg, name, wlIdle, "-n", strconv.Itoa(cfg.Idle)); err != nil {
		return nil, err
	}
	if err := p.waitConns(ctx, cfg.Idle); err != nil {
		return nil, err
	}
	// Idle connections are quiet for a while: a server may treat one
	// that has just spoken (its handshake) differently from one that has
	// not for seconds, as rtkit does (it parks it after a second).
	time.Sleep(idleQuiet)
	after, err := p.serverStats(ctx, "measure")
	if err != nil {
		return nil, err
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 / float64(cfg.Idle) }
	return metrics{
		"rss":   per(after.RSS, before.RSS),
		"heap":  per(after.HeapInuse, before.HeapInuse),
		"stack": per(after.StackInuse, before.StackInuse),
	}, nil
}

func measureFanout(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
	n := cfg.Fanout
	if err := p.startClient(ctx, cfg, name, wlFanout, "-n", strconv.Itoa(n)); err != nil {
		return nil, err
	}
	if err := p.waitConns(ctx, n); err != nil {
		return nil, err
	}
	m := metrics{}
	// phase publishes k messages in steps of step, each step once the
	// previous one has arrived everywhere, and records the rate and the
	// server's CPU per delivery under prefix.
	sent := 0
	phase := func(prefix string, k, step int) error {
		if err := p.mark(ctx); err != nil {
			return err
		}
		start := time.Now()
		for done := 0; done < k; done += step {
			sent += step
			if err := p.cli.Say(fmt.Sprintf("want %d", sent*n)); err != nil {
				return err
			}
			if err := p.srv.Say(fmt.Sprintf("publish %d", step)); err != nil {
				return err
			}
			if _, err := p.cli.Expect(ctx, "reached "); err != nil {
				return fmt.Errorf("%s: client: %w", prefix, err)
			}
		}
		wall := time.Since(start)
		st, err := p.serverStats(ctx, "stats")
		if err != nil {
			return err
		}
		deliveries := float64(k) * float64(n)
		m[prefix+"-rate"] = deliveries / wall.Seconds()
		m[prefix+"-cpu"] = float64(st.CPU.Nanoseconds()) / deliveries
		return nil
	}
	if err := phase("burst", cfg.Burst, cfg.Burst); err != nil {
		return nil, err
	}
	if err := phase("paced", cfg.Paced, 1); err != nil {
		return nil, err
	}
	got, err := ask(ctx, p.cli, "total", "total ")
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if want := strconv.Itoa(sent * n); got != want {
		return nil, fmt.Errorf("the client received %s messages, want %s", got, want)
	}
	return m, nil
}

func measurePush(ctx context.Context, cfg *Config, p *pair, name string) (metrics, error) {
	if err := p.startClient(ctx, cfg, name, wlPush); err != nil {
		return nil, err
	}
	// The stream is open; probe until a message gets through, so that the
	// server has surely subscribed it.
	seen := false
	for range 50 {
		if _, err := ask(ctx, p.srv, "probe", "probed"); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := p.cli.Expect(pctx, "seen-probe")
		cancel()
		if err == nil {
			seen = true
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if !seen {
		return nil, errors.New("no probe message reached the stream")
	}
	if err := p.mark(ctx); err != nil {
		return nil, err
	}
	k := cfg.Push
	if err := p.cli.Say(fmt.Sprintf("want %d", k)); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := p.srv.Say(fmt.Sprintf("push %d", k)); err != nil {
		return nil, err
	}
	if _, err := p.cli.Expect(ctx, "reached "); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	wall := time.Since(start)
	st, err := p.serverStats(ctx, "stats")
	if err != nil {
		return nil, err
	}
	return metrics{
		"rate":  float64(k) / wall.Seconds(),
		"cpu":   float64(st.CPU.Nanoseconds()) / float64(k),
		"bytes": float64(st.BytesOut) / float64(k),
	}, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
