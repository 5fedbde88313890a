package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// target is one row of the table: a server and the client that speaks to
// it.
type target struct {
	name     string
	baseline bool // a raw library, for the overhead ratios
	echo     bool // messages go up and come back (echo, wire up/down)
	push     bool // the server pushes (push throughput)
	// newServer starts a fresh server for one phase.
	newServer func() (*server, error)
	// open connects a client and returns once the connection is open: the
	// WebSocket handshake answered, the SSE session event or the stream's
	// headers read, the long-poll session opened. For request/response
	// there is nothing to open: connecting is the first POST's answer.
	open func(ctx context.Context, s *server) (session, error)
}

// The rows, in the order of the table.
var targets = []target{
	{name: "websocket", echo: true, push: true, newServer: newRtkitServer, open: openWS},
	{name: "sse", echo: true, push: true, newServer: newRtkitServer, open: openSSE},
	{name: "longpoll", echo: true, push: true, newServer: newRtkitServer, open: openLongPoll},
	{name: "http", echo: true, newServer: newRtkitServer, open: openHTTP},
	{name: "gorilla", baseline: true, echo: true, push: true, newServer: newGorillaServer, open: openWS},
	{name: "nethttp-sse", baseline: true, push: true, newServer: newNetHTTPServer, open: openPushStream},
	{name: "r3labs-sse", baseline: true, push: true, newServer: newR3labsServer, open: openPushStream},
}

// Row is one target's figures. Zero means not measured (not applicable).
type Row struct {
	Name     string
	Baseline bool

	ConnectP50 time.Duration // dial to open (or, for http, to the first answer)
	Connects   int           // samples

	EchoP50, EchoP99 time.Duration
	EchoRate         float64 // round trips/s, all clients together
	Echoes           int

	PushRate float64 // messages/s, server to one client
	Pushed   int

	OpenBytes float64 // both directions, to open one connection
	UpBytes   float64 // client to server per message, echo exchange
	DownBytes float64 // server to client per message, echo exchange
	PushBytes float64 // server to client per pushed message

	IdleKiB      float64 // server RSS per idle connection
	IdleHeapKiB  float64 // heap in use per idle connection
	IdleStackKiB float64 // stacks per idle connection
	IdleConns    int

	// Proxies: "yes", "no", or "" (not tried: baselines).
	NoUpgradeProxy, BufferingProxy string
	ProxyNotes                     []string
}

// phaseCtx bounds a phase by cfg.Duration.
func phaseCtx(ctx context.Context, cfg *Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cfg.Duration)
}

// capped reports whether err is the phase's time cap rather than a failure.
func capped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil
}

// withServer runs f against a fresh server of t.
func withServer(t target, f func(s *server) error) error {
	s, err := t.newServer()
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}

// measureConnects opens and closes cfg.Connects connections per row, one
// after another, each on a new TCP connection, and keeps the time to open.
// The rows take turns, ten connections at a time: measured row after row,
// whichever went first came out up to twice as slow (the process warming
// up, its heap still small), baseline or not.
func measureConnects(ctx context.Context, cfg *Config, rows []*Row) error {
	ctx, cancel := phaseCtx(ctx, cfg)
	defer cancel()
	servers := make([]*server, len(targets))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, t := range targets {
		s, err := t.newServer()
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		servers[i] = s
	}
	lat := make([][]time.Duration, len(targets))
	open := func(i int) (time.Duration, error) {
		t, s := targets[i], servers[i]
		t0 := time.Now()
		c, err := t.open(ctx, s)
		if err == nil && t.name == "http" {
			if err = c.Send(ctx, []byte("hello")); err == nil {
				_, err = c.Recv(ctx)
			}
		}
		d := time.Since(t0)
		if err == nil {
			c.Close()
		}
		return d, err
	}
	const turn = 10
	for i := range targets { // one untimed turn each
		for range turn {
			if _, err := open(i); err != nil {
				return fmt.Errorf("%s: connect: %w", targets[i].name, err)
			}
		}
	}
	for done := 0; done < cfg.Connects; done += turn {
		for i := range targets {
			for range min(turn, cfg.Connects-done) {
				d, err := open(i)
				if err != nil {
					if capped(ctx, err) && len(lat[i]) > 0 {
						goto report
					}
					return fmt.Errorf("%s: connect: %w", targets[i].name, err)
				}
				lat[i] = append(lat[i], d)
			}
		}
	}
report:
	for i, r := range rows {
		slices.Sort(lat[i])
		r.ConnectP50, r.Connects = percentile(lat[i], 0.50), len(lat[i])
	}
	return nil
}

// echoMessage is message j of client i: 64 bytes, distinct.
func echoMessage(i, j int) []byte {
	return fmt.Appendf(nil, "%-48s%04d%012d", "echo", i, j)
}

// roundTrip sends msg and checks that it comes back.
func roundTrip(ctx context.Context, c session, msg []byte) error {
	if err := c.Send(ctx, msg); err != nil {
		return err
	}
	got, err := c.Recv(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// measureEcho runs cfg.Messages round trips spread over cfg.Conns clients,
// each with one message in flight.
func measureEcho(ctx context.Context, cfg *Config, t target, r *Row) error {
	ctx, cancel := phaseCtx(ctx, cfg)
	defer cancel()
	return withServer(t, func(s *server) error {
		conns := make([]session, 0, cfg.Conns)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range cfg.Conns {
			c, err := t.open(ctx, s)
			if err != nil {
				return fmt.Errorf("echo: open: %w", err)
			}
			conns = append(conns, c)
			if err := roundTrip(ctx, c, echoMessage(i, 0)); err != nil { // warm up
				return fmt.Errorf("echo: warm-up: %w", err)
			}
		}
		lats := make([][]time.Duration, len(conns))
		errs := make([]error, len(conns))
		var wg sync.WaitGroup
		start := time.Now()
		for i, c := range conns {
			n := cfg.Messages / len(conns)
			if i < cfg.Messages%len(conns) {
				n++
			}
			lats[i] = make([]time.Duration, 0, n)
			wg.Go(func() {
				for j := range n {
					msg := echoMessage(i, j+1)
					t0 := time.Now()
					if err := roundTrip(ctx, c, msg); err != nil {
						if !capped(ctx, err) {
							errs[i] = err
						}
						return
					}
					lats[i] = append(lats[i], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		lat := slices.Concat(lats...)
		if len(lat) == 0 {
			return errors.New("echo: no round trip within the time cap")
		}
		slices.Sort(lat)
		r.EchoP50, r.EchoP99 = percentile(lat, 0.50), percentile(lat, 0.99)
		r.EchoRate, r.Echoes = float64(len(lat))/elapsed.Seconds(), len(lat)
		return nil
	})
}

// measurePush has the server push cfg.Messages payloads to one client, as
// fast as it reads them, and counts the bytes it writes meanwhile.
func measurePush(ctx context.Context, cfg *Config, t target, r *Row) error {
	ctx, cancel := phaseCtx(ctx, cfg)
	defer cancel()
	return withServer(t, func(s *server) error {
		c, err := t.open(ctx, s)
		if err != nil {
			return fmt.Errorf("push: open: %w", err)
		}
		defer c.Close()
		_, out0 := s.bytes()
		start := time.Now()
		if err := c.Push(ctx, cfg.Messages); err != nil {
			return fmt.Errorf("push: %w", err)
		}
		got := 0
		for ; got < cfg.Messages; got++ {
			m, err := c.Recv(ctx)
			if err != nil {
				if capped(ctx, err) && got > 0 {
					break
				}
				return fmt.Errorf("push: after %d messages: %w", got, err)
			}
			if string(m) != payload {
				return fmt.Errorf("push: message %d is %q", got, m)
			}
		}
		elapsed := time.Since(start)
		_, out1 := s.bytes()
		r.PushRate, r.Pushed = float64(got)/elapsed.Seconds(), got
		r.PushBytes = float64(out1-out0) / float64(got)
		return nil
	})
}

// measureWire counts the bytes of opening one connection and of
// cfg.WireMessages small messages each way, one round trip at a time (or,
// for push-only servers, pushed), on a server of its own.
func measureWire(ctx context.Context, cfg *Config, t target, r *Row) error {
	ctx, cancel := phaseCtx(ctx, cfg)
	defer cancel()
	return withServer(t, func(s *server) error {
		c, err := t.open(ctx, s)
		if err != nil {
			return fmt.Errorf("wire: open: %w", err)
		}
		defer c.Close()
		k := cfg.WireMessages
		in0, out0 := s.bytes()
		r.OpenBytes = float64(in0 + out0) // nothing for request/response: its first message is the connection
		if t.echo {
			// Warm up: the first message opens the POST connection on
			// SSE and long-polling.
			if err := roundTrip(ctx, c, echoMessage(0, 0)); err != nil {
				return fmt.Errorf("wire: %w", err)
			}
			in0, out0 = s.bytes()
		}
		if t.echo {
			for j := range k {
				if err := roundTrip(ctx, c, echoMessage(0, j+1)); err != nil {
					return fmt.Errorf("wire: %w", err)
				}
			}
		} else {
			if err := c.Push(ctx, k); err != nil {
				return fmt.Errorf("wire: %w", err)
			}
			for j := range k {
				if _, err := c.Recv(ctx); err != nil {
					return fmt.Errorf("wire: message %d: %w", j, err)
				}
			}
		}
		in1, out1 := s.bytes()
		r.DownBytes = float64(out1-out0) / float64(k)
		if t.echo {
			r.UpBytes = float64(in1-in0) / float64(k)
		}
		return nil
	})
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
