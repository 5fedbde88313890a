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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/compare/internal/harness"
	rtsse "github.com/rtkit/rtkit/transports/sse"
)

// clientConfig is what the client process is told on its command line.
type clientConfig struct {
	server   string
	workload string
	addr     string
	size     int           // message bytes
	n        int           // connections (echo, idle, fan-out) or connects
	duration time.Duration // echo: the measured span
	warm     time.Duration // echo: the warm-up span
	perIP    int           // idle and fan-out: connections per source address
}

// EchoResult is the client's answer to an echo or connect run.
type EchoResult struct {
	Count   int           `json:"count"`
	Elapsed time.Duration `json:"elapsed"`
	P50     time.Duration `json:"p50"`
	P99     time.Duration `json:"p99"`
}

// client runs the client role of one workload. It prints "ready" once set
// up, then follows stdin:
//
//	go        echo, connect: run, then answer "result {EchoResult}"
//	want X    fan-out, push: answer "reached X" once X messages arrived in all
//	total     fan-out, push: answer "total N"
//
// A push client also prints "seen-probe" when the first probe message
// arrives. It returns when stdin ends, closing its connections.
func client(cfg clientConfig, stdin io.Reader, stdout io.Writer) error {
	p, ok := peerNamed(cfg.server)
	if !ok {
		return fmt.Errorf("unknown server %q", cfg.server)
	}
	out := &lines{w: stdout}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		defer cancel() // stdin's end stops everything, even a dial
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
	}()
	var err error
	switch cfg.workload {
	case wlEcho:
		err = clientEcho(ctx, cfg, p, out, cmds)
	case wlConnect:
		err = clientConnect(ctx, cfg, p, out, cmds)
	case wlIdle:
		err = clientIdle(ctx, cfg, p, out, cmds)
	case wlFanout, wlPush:
		err = clientStreams(ctx, cfg, p, out, cmds)
	default:
		err = fmt.Errorf("unknown workload %q", cfg.workload)
	}
	if err != nil {
		out.printf("error %v", err)
	}
	return err
}

// clientTimeout bounds a client process's whole life.
const clientTimeout = 3 * time.Minute

// lines serialises lines written from several goroutines.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lines) json(prefix string, v any) {
	b, _ := json.Marshal(v)
	l.printf("%s %s", prefix, b)
}

// await returns the next command, or an error once ctx ends or stdin does.
func await(ctx context.Context, cmds <-chan string) (string, error) {
	select {
	case c, ok := <-cmds:
		if !ok {
			return "", io.EOF
		}
		return c, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// holdUntilEOF waits for stdin to end.
func holdUntilEOF(ctx context.Context, cmds <-chan string) {
	for {
		if _, err := await(ctx, cmds); err != nil {
			return
		}
	}
}

// clientEcho opens cfg.n connections, warms them up for cfg.warm, and on
// "go" has each keep one message in flight for cfg.duration.
func clientEcho(ctx context.Context, cfg clientConfig, p peer, out *lines, cmds <-chan string) error {
	msg := payload(cfg.size)
	conns := make([]*wsClient, 0, cfg.n)
	defer func() {
		for _, c := range conns {
			c.ws.Close()
		}
	}()
	for range cfg.n {
		ws, err := dialWS(ctx, cfg.addr, nil, 4096, 4096)
		if err != nil {
			return err
		}
		c := &wsClient{ws: ws, wire: p.wire}
		conns = append(conns, c)
		c.setDeadline(ctx)
		if err := c.open(ctx, false); err != nil {
			return err
		}
	}
	if _, _, err := echoAll(conns, msg, cfg.warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	out.printf("ready")
	if _, err := await(ctx, cmds); err != nil {
		return err
	}
	lat, elapsed, err := echoAll(conns, msg, cfg.duration)
	if err != nil {
		return err
	}
	out.json("result", summarise(lat, elapsed))
	holdUntilEOF(ctx, cmds)
	return nil
}

// echoAll has every connection echo msg, one at a time, for d, and
// returns every round trip's time and the span from the start to the last
// connection's end.
func echoAll(conns []*wsClient, msg []byte, d time.Duration) ([]time.Duration, time.Duration, error) {
	lats := make([][]time.Duration, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i, c := range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			for t0 := time.Now(); t0.Before(end); t0 = time.Now() {
				if err := c.echo(msg); err != nil {
					errs[i] = err
					break
				}
				lat = append(lat, time.Since(t0))
			}
			lats[i] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	return slices.Concat(lats...), elapsed, errors.Join(errs...)
}

func summarise(lat []time.Duration, elapsed time.Duration) EchoResult {
	slices.Sort(lat)
	return EchoResult{Count: len(lat), Elapsed: elapsed, P50: percentile(lat, 0.50), P99: percentile(lat, 0.99)}
}

// clientConnect opens connections one after another, cfg.n/10 untimed,
// then on "go" cfg.n timed: each a new TCP connection, from the next
// source address, timed from the dial to the first echo (for centrifuge
// the connect command comes in between), then closed with a close frame.
func clientConnect(ctx context.Context, cfg clientConfig, p peer, out *lines, cmds <-chan string) error {
	msg := payload(cfg.size)
	i := 0
	once := func() (time.Duration, error) {
		src := harness.SourceIP(i%harness.MaxSources, 1)
		i++
		t0 := time.Now()
		ws, err := dialWS(ctx, cfg.addr, src, 4096, 4096)
		if err != nil {
			return 0, err
		}
		c := &wsClient{ws: ws, wire: p.wire}
		c.setDeadline(ctx)
		err = c.open(ctx, false)
		if err == nil {
			err = c.echo(msg)
		}
		d := time.Since(t0)
		c.close()
		return d, err
	}
	for range max(cfg.n/10, 1) {
		if _, err := once(); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	out.printf("ready")
	if _, err := await(ctx, cmds); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, cfg.n)
	start := time.Now()
	for range cfg.n {
		d, err := once()
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	out.json("result", summarise(lat, time.Since(start)))
	holdUntilEOF(ctx, cmds)
	return nil
}

// clientIdle opens cfg.n connections from 127.0.0.2, 127.0.0.3, ...
// (cfg.perIP each) and holds them: WebSocket connections, opened (for
// centrifuge, connected), or requests for event streams (the server
// counting them is the sign they are open). Closing them resets them, so that no port lingers in
// TIME_WAIT.
func clientIdle(ctx context.Context, cfg clientConfig, p peer, out *lines, cmds <-chan string) error {
	if err := harness.CheckSources(cfg.n, cfg.perIP); err != nil {
		return err
	}
	conns, err := harness.DialAll(ctx, cfg.n, cfg.perIP, 64, func(ctx context.Context, _ int, src net.IP) (net.Conn, error) {
		if p.sse {
			return openStream(ctx, cfg.addr, src)
		}
		ws, err := dialWS(ctx, cfg.addr, src, 256, 256)
		if err != nil {
			return nil, err
		}
		c := &wsClient{ws: ws, wire: p.wire}
		c.setDeadline(ctx)
		if err := c.open(ctx, false); err != nil {
			ws.Close()
			return nil, err
		}
		ws.SetReadDeadline(time.Time{})
		ws.SetWriteDeadline(time.Time{})
		nc := ws.NetConn()
		harness.ResetOnClose(nc)
		return nc, nil
	})
	if err != nil {
		return err
	}
	defer harness.CloseAll(conns)
	out.printf("ready")
	holdUntilEOF(ctx, cmds)
	return nil
}

// tally counts the messages every reader received and wakes a waiter
// once they reach a target.
type tally struct {
	total atomic.Int64
	want  atomic.Int64
	hit   chan struct{}
}

func newTally() *tally { return &tally{hit: make(chan struct{}, 1)} }

func (t *tally) add(n int64) {
	if v := t.total.Add(n); v >= t.want.Load() {
		select {
		case t.hit <- struct{}{}:
		default:
		}
	}
}

// reach waits until x messages have arrived.
func (t *tally) reach(ctx context.Context, x int64) error {
	t.want.Store(x)
	for t.total.Load() < x {
		select {
		case <-t.hit:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d messages arrived: %w", t.total.Load(), x, ctx.Err())
		}
	}
	return nil
}

// clientStreams opens the readers of the fan-out and push workloads: for
// fan-out cfg.n WebSocket subscribers from 127.0.0.2, ... (for
// centrifuge, connected and subscribed); for push one event stream. Each
// reader adds what it receives to one tally.
func clientStreams(ctx context.Context, cfg clientConfig, p peer, out *lines, cmds <-chan string) error {
	t := newTally()
	var readErr atomic.Pointer[error]
	fail := func(err error) { readErr.CompareAndSwap(nil, &err) }
	var conns []net.Conn
	var err error
	if cfg.workload == wlPush {
		c, err := openStream(ctx, cfg.addr, nil)
		if err != nil {
			return err
		}
		conns = []net.Conn{c}
		var probed atomic.Bool
		go func() {
			r, err := readStream(c)
			if err != nil {
				fail(err)
				return
			}
			for {
				ev, err := r.Next()
				if err != nil {
					fail(err)
					return
				}
				switch {
				case ev.Type != "" && ev.Type != "message":
				case string(ev.Data) == probeData:
					if !probed.Swap(true) {
						out.printf("seen-probe")
					}
				default:
					t.add(1)
				}
			}
		}()
	} else {
		if err := harness.CheckSources(cfg.n, cfg.perIP); err != nil {
			return err
		}
		conns, err = harness.DialAll(ctx, cfg.n, cfg.perIP, 64, func(ctx context.Context, _ int, src net.IP) (net.Conn, error) {
			ws, err := dialWS(ctx, cfg.addr, src, 4096, 256)
			if err != nil {
				return nil, err
			}
			c := &wsClient{ws: ws, wire: p.wire}
			c.setDeadline(ctx)
			if err := c.open(ctx, true); err != nil {
				ws.Close()
				return nil, err
			}
			ws.SetReadDeadline(time.Time{})
			ws.SetWriteDeadline(time.Time{})
			go func() {
				for {
					n, err := c.deliveries()
					if err != nil {
						if ctx.Err() == nil {
							fail(err)
						}
						return
					}
					t.add(int64(n))
				}
			}()
			nc := ws.NetConn()
			harness.ResetOnClose(nc)
			return nc, nil
		})
		if err != nil {
			return err
		}
	}
	defer harness.CloseAll(conns)
	out.printf("ready")
	for {
		cmd, err := await(ctx, cmds)
		if err != nil {
			return nil
		}
		verb, arg, _ := strings.Cut(cmd, " ")
		switch verb {
		case "want":
			x, _ := strconv.ParseInt(arg, 10, 64)
			rctx, cancel := context.WithTimeout(ctx, reachTimeout)
			err := t.reach(rctx, x)
			cancel()
			if e := readErr.Load(); err != nil && e != nil {
				err = fmt.Errorf("%w (a reader failed: %v)", err, *e)
			}
			if err != nil {
				return err
			}
			out.printf("reached %d", x)
		case "total":
			out.printf("total %d", t.total.Load())
		default:
			out.printf("error unknown request %q", cmd)
		}
	}
}

// reachTimeout bounds the wait for one "want".
const reachTimeout = time.Minute

// openStream sends a GET for the event stream of the server at addr from
// source address src (nil: any) and returns the connection, without
// waiting for the response: go-sse sends its headers only with the first
// event. The server counting the stream is the sign that it is open.
func openStream(ctx context.Context, addr string, src net.IP) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	harness.ResetOnClose(c)
	dl, _ := ctx.Deadline()
	c.SetWriteDeadline(dl)
	if _, err := fmt.Fprintf(c, "GET /?stream=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", sseStream, addr); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// readStream reads the response to openStream's request and returns a
// reader of its events.
func readStream(c net.Conn) (*rtsse.Reader, error) {
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	return rtsse.NewReader(resp.Body), nil
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
