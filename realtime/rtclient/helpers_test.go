package rtclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/testing/realtimetest"
	_ "github.com/rtkit/rtkit/testing/realtimetest" // registers every transport
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var allKinds = []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}

// allServers are the route's side of allKinds, in the same order.
var allServers = []realtime.Transport{rtws.New(rtws.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}

// recorder is the server side of a test: an echo handler that tells the
// test what happened. A text message "bye" closes with 4001, "close:N"
// with N.
type recorder struct {
	opens  chan *realtime.Conn
	closes chan error
	tokens chan string // realtime.BearerToken of each connection's request
}

func newRecorder() *recorder {
	return &recorder{opens: make(chan *realtime.Conn, 16), closes: make(chan error, 16), tokens: make(chan string, 16)}
}

func (rec *recorder) handler() realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			rec.tokens <- realtime.BearerToken(c.Request())
			rec.opens <- c
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			if m.Type == realtime.TextMessage && m.Text() == "bye" {
				return &realtime.CloseError{Code: 4001, Reason: "bye"}
			}
			if code, ok := strings.CutPrefix(m.Text(), "close:"); ok && m.Type == realtime.TextMessage {
				n, _ := strconv.Atoi(code)
				return &realtime.CloseError{Code: n, Reason: "asked"}
			}
			return c.Send(m)
		},
		OnClose: func(c *realtime.Conn, err error) { rec.closes <- err },
	}
}

// proxy sits between client and route and can behave like a hostile
// network: refuse upgrades, buffer streams. It records every request's
// bearer token and URL.
type proxy struct {
	h        http.Handler
	refuseWS atomic.Bool
	buffer   atomic.Bool
	refuse   atomic.Bool // 503 for everything

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, url, bearer, lastEventID string
	upgrade                          bool
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, seenRequest{r.Method, r.URL.String(), realtime.BearerToken(r), r.Header.Get("Last-Event-ID"), websocket.IsWebSocketUpgrade(r)})
	p.mu.Unlock()
	if p.refuse.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if p.refuseWS.Load() && websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "no upgrades here", http.StatusForbidden)
		return
	}
	if p.buffer.Load() && r.Method == http.MethodGet &&
		(strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.URL.Query().Get("transport") == "sse") {
		bw := &bufferedWriter{h: http.Header{}, code: http.StatusOK}
		p.h.ServeHTTP(bw, r) // returns when the client gives up
		for k, v := range bw.h {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.code)
		w.Write(bw.buf.Bytes())
		return
	}
	p.h.ServeHTTP(w, r)
}

func (p *proxy) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

// bufferedWriter holds a whole response, as a buffering proxy does.
type bufferedWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.h }
func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferedWriter) Flush()                      {}

// fixture is a route behind a proxy on a loopback server.
type fixture struct {
	rec   *recorder
	route *realtime.Route
	proxy *proxy
	ts    *httptest.Server
	ln    *realtimetest.Listener
}

// drop closes every TCP connection of the server, hijacked WebSockets
// included, as a network failure would.
func (f *fixture) drop() { f.ln.Drop() }

func newFixture(t *testing.T, o *realtime.Options) *fixture {
	t.Helper()
	var oo realtime.Options
	if o != nil {
		oo = *o
	}
	if oo.Transports == nil {
		oo.Transports = allServers
	}
	f := &fixture{rec: newRecorder()}
	f.route = realtime.NewRoute(f.rec.handler(), &oo)
	f.proxy = &proxy{h: f.route}
	f.ts = httptest.NewUnstartedServer(f.proxy)
	f.ln = &realtimetest.Listener{Listener: f.ts.Listener}
	f.ts.Listener = f.ln
	f.ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.route.Shutdown(ctx)
		f.ts.Close()
	})
	return f
}

// states collects OnState calls.
type states chan stateChange

type stateChange struct {
	s    rtclient.State
	kind realtime.Kind
	err  error
}

func (ch states) on(s rtclient.State, k realtime.Kind, err error) {
	select {
	case ch <- stateChange{s, k, err}:
	default: // a test that does not read them
	}
}

// wait returns the first change to s.
func (ch states) wait(t *testing.T, s rtclient.State) stateChange {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case sc := <-ch:
			if sc.s == s {
				return sc
			}
		case <-timeout:
			t.Fatalf("no state %v", s)
		}
	}
}

// fastOptions reconnect quickly.
func fastOptions(kinds ...realtime.Kind) *rtclient.Options {
	return &rtclient.Options{
		Transports: kinds,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, o *rtclient.Options) *rtclient.Conn {
	t.Helper()
	c, err := rtclient.Dial(testContext(t), url, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close(realtime.CloseNormal, "") })
	return c
}

func receiveText(t *testing.T, ctx context.Context, c *rtclient.Conn) string {
	t.Helper()
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if m.Type != realtime.TextMessage {
		t.Fatalf("Receive: %v message, want text", m.Type)
	}
	return m.Text()
}

func closeCode(t *testing.T, err error) *realtime.CloseError {
	t.Helper()
	var ce *realtime.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *realtime.CloseError", err)
	}
	return ce
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}
