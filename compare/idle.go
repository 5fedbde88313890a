package main

// Memory per idle connection, measured as compare/idlemem does: for each
// row the command re-executes itself as a server process (-role server)
// and a client process (-role client) that holds -idle connections open.
// The two talk to this process one line at a time over their stdin and
// stdout and exit when their stdin closes, so they never outlive it. The
// server answers "measure" after runtime.GC and debug.FreeOSMemory with its
// VmRSS, HeapInuse and StackInuse; the figure is the difference between
// before and after the client connects, per connection.
//
// What "idle" means per row: a WebSocket after its handshake; an event
// stream after its first event (rtkit's session event, the net/http loop's
// headers and first comment, r3labs' headers); a long-poll session with its
// poll held; for request/response, a keep-alive connection after one POST.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	r3sse "github.com/r3labs/sse/v2"

	"github.com/rtkit/rtkit/compare/internal/harness"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// stats is what the server reports.
type stats struct {
	Conns int `json:"conns"`
	harness.Memory
}

// measureIdle measures row r's idle connections with cfg.Idle connections.
func measureIdle(ctx context.Context, cfg *Config, r *Row) error {
	ctx, cancel := context.WithTimeout(ctx, max(cfg.Duration, 30*time.Second))
	defer cancel()
	srv, err := harness.Start(cfg.Exe, "-role", "server", "-mode", r.Name)
	if err != nil {
		return err
	}
	defer srv.Stop()
	addr, err := srv.Expect(ctx, "listening ")
	if err != nil {
		return fmt.Errorf("idle server: %w", err)
	}
	before, err := query(ctx, srv, "measure")
	if err != nil {
		return err
	}
	cli, err := harness.Start(cfg.Exe, "-role", "client", "-mode", r.Name, "-addr", addr,
		"-n", strconv.Itoa(cfg.Idle), "-per-ip", strconv.Itoa(cfg.PerIP))
	if err != nil {
		return err
	}
	defer cli.Stop()
	if _, err := cli.Expect(ctx, "ready "); err != nil {
		return fmt.Errorf("idle client: %w", err)
	}
	for {
		st, err := query(ctx, srv, "count")
		if err != nil {
			return err
		}
		if st.Conns >= cfg.Idle {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the idle server counts %d of %d connections: %w", st.Conns, cfg.Idle, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	after, err := query(ctx, srv, "measure")
	if err != nil {
		return err
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 / float64(cfg.Idle) }
	r.IdleKiB = per(after.RSS, before.RSS)
	r.IdleHeapKiB = per(after.HeapInuse, before.HeapInuse)
	r.IdleStackKiB = per(after.StackInuse, before.StackInuse)
	r.IdleConns = after.Conns
	if err := cli.Stop(); err != nil {
		return fmt.Errorf("idle client: %w", err)
	}
	if err := srv.Stop(); err != nil {
		return fmt.Errorf("idle server: %w", err)
	}
	return nil
}

// query asks the idle server for its figures.
func query(ctx context.Context, srv *harness.Child, req string) (stats, error) {
	var st stats
	if err := srv.Say(req); err != nil {
		return st, fmt.Errorf("idle server: %w", err)
	}
	l, err := srv.Expect(ctx, "stats ")
	if err != nil {
		return st, fmt.Errorf("idle server: %w", err)
	}
	return st, json.Unmarshal([]byte(l), &st)
}

// idleServer runs the server role for row mode: it prints "listening
// ADDR", answers each "count" or "measure" line with "stats {json}", and
// returns when stdin ends.
func idleServer(mode string, stdin io.Reader, stdout io.Writer) error {
	h, count, err := idleHandler(mode)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if count == nil { // request/response: count idle keep-alive connections
		var mu sync.Mutex
		states := map[net.Conn]http.ConnState{}
		var idle atomic.Int64
		hs.ConnState = func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if states[c] == http.StateIdle {
				idle.Add(-1)
			}
			if s == http.StateIdle {
				idle.Add(1)
			}
			if s == http.StateClosed || s == http.StateHijacked {
				delete(states, c)
			} else {
				states[c] = s
			}
		}
		count = func() int { return int(idle.Load()) }
	}
	go hs.Serve(ln)
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var st stats
		switch sc.Text() {
		case "measure":
			st = stats{Memory: harness.MeasureSelf()}
		case "count":
		default:
			fmt.Fprintf(stdout, "error unknown request %q\n", sc.Text())
			continue
		}
		st.Conns = count()
		b, _ := json.Marshal(st)
		fmt.Fprintf(stdout, "stats %s\n", b)
	}
	ln.Close() // the parent is done: exit without waiting for the connections
	return nil
}

// idleHandler returns the server of a row and its count of idle
// connections (nil for http, which the server's ConnState counts).
func idleHandler(mode string) (http.Handler, func() int, error) {
	var live atomic.Int64
	counted := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			live.Add(1)
			defer live.Add(-1)
			h(w, r)
		}
	}
	switch mode {
	case "websocket", "sse", "longpoll", "http":
		o := *routeOptions()
		o.Overflow = realtime.OverflowClose // the default: idle connections never fill a queue
		rt := realtime.NewRoute(handler, &o)
		switch mode {
		case "longpoll":
			// A session counts once its poll is held.
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Query().Get("transport") == "longpoll" {
					live.Add(1)
					defer live.Add(-1)
				}
				rt.ServeHTTP(w, r)
			})
			return h, func() int { return min(int(live.Load()), rt.Len()) }, nil
		case "http":
			return rt, nil, nil
		}
		return rt, rt.Len, nil
	case "gorilla":
		up := gorillaUpgrader()
		return counted(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}), func() int { return int(live.Load()) }, nil
	case "nethttp-sse":
		return counted(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, ": open\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}), func() int { return int(live.Load()) }, nil
	case "r3labs-sse":
		r3 := r3sse.NewWithCallback(
			func(string, *r3sse.Subscriber) { live.Add(1) },
			func(string, *r3sse.Subscriber) { live.Add(-1) },
		)
		r3.AutoReplay = false
		r3.CreateStream(r3Stream)
		return r3, func() int { return int(live.Load()) }, nil
	}
	return nil, nil, fmt.Errorf("unknown mode %q", mode)
}

// idleClient runs the client role: it opens n idle connections to addr from
// 127.0.0.2, 127.0.0.3, ... (perIP each), prints "ready N" (or "error
// ..."), and closes them when stdin ends.
func idleClient(mode, addr string, n, perIP int, stdin io.Reader, stdout io.Writer) error {
	if _, _, err := idleHandler(mode); err != nil {
		return err
	}
	if err := harness.CheckSources(n, perIP); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		defer cancel()
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
		}
	}()
	conns, err := harness.DialAll(ctx, n, perIP, 32, func(ctx context.Context, _ int, src net.IP) (net.Conn, error) {
		return openIdle(ctx, mode, addr, src)
	})
	if err != nil {
		fmt.Fprintf(stdout, "error %v\n", err)
		return err
	}
	defer harness.CloseAll(conns)
	fmt.Fprintf(stdout, "ready %d\n", n)
	<-stop
	return nil
}

// openIdle makes one idle connection of the row's kind from src and
// returns its TCP connection.
func openIdle(ctx context.Context, mode, addr string, src net.IP) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	if mode == "websocket" || mode == "gorilla" {
		wd := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
		ws, resp, err := wd.DialContext(ctx, "ws://"+addr+"/", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		c := ws.UnderlyingConn()
		harness.ResetOnClose(c)
		return c, nil
	}
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
	br := bufio.NewReaderSize(c, 1024)
	// do writes req on c and reads the answer's headers.
	do := func(method, target string, body string, h http.Header) (*http.Response, error) {
		req, _ := http.NewRequest(method, "http://"+addr+target, strings.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		if err := req.Write(c); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s %s: %s", method, target, resp.Status)
		}
		return resp, nil
	}
	stream := http.Header{"Accept": {"text/event-stream"}}
	switch mode {
	case "sse", "nethttp-sse":
		target := "/?transport=sse"
		if mode == "nethttp-sse" {
			target = "/"
		}
		resp, err := do(http.MethodGet, target, "", stream)
		if err != nil {
			return nil, err
		}
		if mode == "sse" {
			ev, err := sse.NewReader(resp.Body).Next()
			if err != nil {
				return nil, err
			}
			if ev.Type != sse.EventSession {
				return nil, fmt.Errorf("first event %q", ev.Type)
			}
		} else if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil { // ": open"
			return nil, err
		}
	case "r3labs-sse":
		if _, err := do(http.MethodGet, "/?stream="+r3Stream, "", stream); err != nil {
			return nil, err
		}
	case "longpoll":
		resp, err := do(http.MethodPost, "/?transport=longpoll", "", nil)
		if err != nil {
			return nil, err
		}
		var opened struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&opened)
		io.Copy(io.Discard, resp.Body)
		if err != nil {
			return nil, err
		}
		// Hold a poll: written, never read.
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/?transport=longpoll", nil)
		req.Header.Set(realtime.HeaderToken, opened.Token)
		req.Header.Set(longpoll.HeaderAck, "0")
		if err := req.Write(c); err != nil {
			return nil, err
		}
	case "http":
		resp, err := do(http.MethodPost, "/", "idle", http.Header{"Content-Type": {"text/plain"}})
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(b, []byte("idle")) {
			return nil, fmt.Errorf("answer %q, %v", b, err)
		}
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	c.SetDeadline(time.Time{})
	harness.ResetOnClose(c)
	ok = true
	return c, nil
}
