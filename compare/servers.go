package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	r3sse "github.com/r3labs/sse/v2"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// payload is the small message every push sends: 64 bytes of text.
var payload = strings.Repeat("0123456789abcdef", 4)

// pushPrefix starts the message that asks a server to push: "push N" makes
// it send N payloads to the connection that asked, as fast as it can.
const pushPrefix = "push "

// pushCount parses a push request.
func pushCount(text string) (int, bool) {
	rest, ok := strings.CutPrefix(text, pushPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// handler is the one rtkit handler every transport serves: it echoes each
// message, except "push N", which starts a producer that sends N payloads.
// Under OverflowBlock the producer waits for room in the send queue (or,
// on SSE and long-polling, the session backlog) instead of overflowing it.
var handler = realtime.Funcs{
	OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		if n, ok := pushCount(m.Text()); ok && m.Type == realtime.TextMessage {
			msg := realtime.Text(payload) // shared: Send does not modify it
			c.Go(func(ctx context.Context) error {
				for range n {
					if err := c.Send(msg); err != nil {
						return err
					}
				}
				return nil
			})
			return nil
		}
		return c.Send(m)
	},
}

// routeOptions are the options of the measured route: every transport, the
// default limits, and a producer that waits for a slow reader rather than
// disconnecting it.
func routeOptions() *realtime.Options {
	return &realtime.Options{
		// Load from a few addresses: no caps.
		MaxConns: -1, MaxConnsPerClient: -1,
		Transports: []realtime.Transport{rtws.New(rtws.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{}), longpoll.NewRequestResponse()},
		Overflow:   realtime.OverflowBlock,
		Logger:     quietLogger(),
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// server is one HTTP server on a loopback port whose connections count
// their bytes.
type server struct {
	URL string // http://127.0.0.1:port/
	ln  *countingListener
	hs  *http.Server
	// shutdown, when set, runs before the listener closes (a route's
	// Shutdown, a baseline's cleanup).
	shutdown func(ctx context.Context)
	// push, when set, makes a push-only baseline send n payloads to the
	// client connected to it.
	push func(ctx context.Context, n int) error
	// wait, when set, returns once the baseline's handlers have returned.
	wait func(ctx context.Context)
}

func startServer(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cl := &countingListener{Listener: ln}
	s := &server{URL: "http://" + ln.Addr().String() + "/", ln: cl}
	s.hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go s.hs.Serve(cl)
	return s, nil
}

// wsURL is the server's URL with the ws scheme.
func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// bytes returns what the server has read and written so far.
func (s *server) bytes() (in, out int64) { return s.ln.in.Load(), s.ln.out.Load() }

// Close shuts the server down, bounded by a few seconds.
func (s *server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.shutdown != nil {
		s.shutdown(ctx)
	}
	s.hs.Close()
	if s.wait != nil {
		s.wait(ctx)
	}
}

// countingListener counts the bytes its connections read and write at the
// TCP level: HTTP headers, chunk framing, WebSocket frame headers and all.
type countingListener struct {
	net.Listener
	in, out atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.in.Add(int64(n))
	return n, err
}

// Write counts before it writes, so that a client that has received an
// answer always finds it counted.
func (c *countingConn) Write(p []byte) (int, error) {
	c.l.out.Add(int64(len(p)))
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.l.out.Add(int64(n - len(p)))
	}
	return n, err
}

// newRtkitServer serves the measured route.
func newRtkitServer() (*server, error) {
	rt := realtime.NewRoute(handler, routeOptions())
	s, err := startServer(rt)
	if err != nil {
		return nil, err
	}
	s.shutdown = func(ctx context.Context) { rt.Shutdown(ctx) }
	return s, nil
}

// gorillaUpgrader is configured like rtkit's WebSocket transport: same
// buffer sizes, a shared write buffer pool.
func gorillaUpgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
}

// newGorillaServer is the WebSocket baseline: raw gorilla/websocket, one
// goroutine per connection doing ReadMessage then WriteMessage, with the
// handler's "push N" done inline.
func newGorillaServer() (*server, error) {
	up := gorillaUpgrader()
	var wg sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		msg := []byte(payload)
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if n, ok := pushCount(string(p)); ok && mt == websocket.TextMessage {
				for range n {
					if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
						return
					}
				}
				continue
			}
			if err := ws.WriteMessage(mt, p); err != nil {
				return
			}
		}
	})
	s, err := startServer(h)
	if err != nil {
		return nil, err
	}
	s.wait = func(ctx context.Context) { waitGroup(ctx, &wg) }
	return s, nil
}

// waitGroup waits for wg, at most until ctx ends.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// newNetHTTPServer is the minimal SSE baseline: a hand-written net/http
// handler that sends the headers, then, when told to, writes and flushes
// one event per message.
func newNetHTTPServer() (*server, error) {
	starts := make(chan int)
	event := []byte("data: " + payload + "\n\n")
	var wg sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		f := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		f.Flush()
		select {
		case n := <-starts:
			for range n {
				if _, err := w.Write(event); err != nil {
					return
				}
				f.Flush()
			}
		case <-r.Context().Done():
			return
		}
		<-r.Context().Done()
	})
	s, err := startServer(h)
	if err != nil {
		return nil, err
	}
	s.push = func(ctx context.Context, n int) error {
		select {
		case starts <- n:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.wait = func(ctx context.Context) { waitGroup(ctx, &wg) }
	return s, nil
}

// r3Stream is the one stream of the r3labs baseline.
const r3Stream = "bench"

// newR3labsServer is the second SSE baseline: github.com/r3labs/sse/v2's
// server with one stream and no event log, one Publish per message.
//
// r3labs deregisters a subscriber through its stream's goroutine, so the
// server is closed only once every subscriber is gone (the clients hang up
// first); otherwise the request's watcher goroutine blocks for ever.
func newR3labsServer() (*server, error) {
	var mu sync.Mutex
	subs := 0
	changed := make(chan struct{}, 1)
	note := func(d int) {
		mu.Lock()
		subs += d
		mu.Unlock()
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	r3 := r3sse.NewWithCallback(
		func(string, *r3sse.Subscriber) { note(1) },
		func(string, *r3sse.Subscriber) { note(-1) },
	)
	r3.AutoReplay = false
	r3.CreateStream(r3Stream)
	s, err := startServer(r3)
	if err != nil {
		r3.Close()
		return nil, err
	}
	s.URL += "?stream=" + r3Stream
	var pubs sync.WaitGroup
	s.push = func(ctx context.Context, n int) error {
		ev := &r3sse.Event{Data: []byte(payload)}
		// Publish blocks while the stream's buffer is full and returns
		// once the stream is closed.
		pubs.Go(func() {
			for range n {
				r3.Publish(r3Stream, ev)
			}
		})
		return nil
	}
	s.shutdown = func(ctx context.Context) {
		for {
			mu.Lock()
			n := subs
			mu.Unlock()
			if n <= 0 {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				slog.Warn("compare: r3labs subscribers still registered at shutdown", "n", n)
				r3.Close()
				return
			}
		}
		r3.Close()
	}
	s.wait = func(ctx context.Context) { waitGroup(ctx, &pubs) }
	return s, nil
}

var errUnsupported = errors.New("not supported by this server")

// statusError describes an unexpected HTTP answer.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Errorf("HTTP %s: %q", resp.Status, b)
}
