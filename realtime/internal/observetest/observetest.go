// Package observetest scripts traffic over every transport for the tests
// of the Observer adapters (rtprom, rtotel), so that each adapter is
// checked against the same script and the same exact counts.
//
// Every step waits for what the server did to be over before it returns
// (the server side of each connection is Done, which comes after its
// close event), so the observer has been told everything by then.
package observetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// Route is the Route label of the scripted routes: the ServeMux pattern
// they are mounted at.
const Route = "/echo"

// Timeout bounds each step.
const Timeout = 10 * time.Second

// Server serves an echo route on loopback over WebSocket, SSE,
// long-polling and request/response, with the observer set. Messages
// "fail" and "panic" make the handler fail; "flood" makes it send until
// the send queue overflows.
type Server struct {
	t      testing.TB
	URL    string // of the route
	Route  *realtime.Route
	opened chan *realtime.Conn
}

// Options are the route's options besides the transports, the logger
// and the observer: a small send queue, so that Flood overflows soon.
var Options = realtime.Options{SendQueue: 8}

// NewServer starts a Server whose route reports to obs. With
// refuseUpgrades, a middleware in front of the route refuses WebSocket
// upgrades with 403, as some proxies do.
func NewServer(t testing.TB, obs realtime.Observer, refuseUpgrades bool) *Server {
	t.Helper()
	s := &Server{t: t, opened: make(chan *realtime.Conn, 64)}
	o := Options
	o.Observer = obs
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Transports = []realtime.Transport{
		rtws.New(rtws.Options{}),
		sse.New(sse.Options{}),
		longpoll.New(longpoll.Options{}),
		longpoll.NewRequestResponse(),
	}
	s.Route = realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			s.opened <- c
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			switch m.Text() {
			case "fail":
				return errors.New("observetest: failing as asked")
			case "panic":
				panic("observetest: panicking as asked")
			case "flood":
				big := realtime.Message{Type: realtime.TextMessage, Data: bytes.Repeat([]byte("x"), 1024)}
				for c.Send(big) == nil {
				}
				return nil
			}
			return c.Send(m)
		},
	}, &o)
	var h http.Handler = s.Route
	if refuseUpgrades {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "upgrades are not allowed here", http.StatusForbidden)
				return
			}
			s.Route.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle(Route, h)
	srv := httptest.NewServer(mux)
	s.URL = srv.URL + Route
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		s.Route.Shutdown(ctx)
		srv.Close()
	})
	return s
}

// next returns the next connection the route opened.
func (s *Server) next() *realtime.Conn {
	s.t.Helper()
	select {
	case c := <-s.opened:
		return c
	case <-time.After(Timeout):
		s.t.Fatal("observetest: no connection opened")
		return nil
	}
}

// wait waits until c is over, its close reported.
func (s *Server) wait(c *realtime.Conn) {
	s.t.Helper()
	select {
	case <-c.Done():
	case <-time.After(Timeout):
		s.t.Fatalf("observetest: connection %s did not end", c.ID())
	}
}

func (s *Server) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	s.t.Cleanup(cancel)
	return ctx
}

// Echoes are the messages Echo sends: 3 messages, 6 bytes, each way.
var Echoes = []string{"a", "bb", "ccc"}

// Echo dials the route with rtclient on transport k (after one
// negotiation), sends Echoes and reads each back, then closes with 4000.
func (s *Server) Echo(k realtime.Kind) {
	s.t.Helper()
	ctx := s.ctx()
	cl, err := rtclient.Dial(ctx, s.URL, &rtclient.Options{Transports: []realtime.Kind{k}, Logger: quiet})
	if err != nil {
		s.t.Fatalf("observetest: dial %s: %v", k, err)
	}
	c := s.next()
	for _, m := range Echoes {
		if err := cl.SendText(ctx, m); err != nil {
			s.t.Fatal(err)
		}
		got, err := cl.Receive(ctx)
		if err != nil || got.Text() != m {
			s.t.Fatalf("observetest: echo of %q over %s: %q, %v", m, k, got.Text(), err)
		}
	}
	cl.Close(4000, "bye")
	s.wait(c)
}

// Exchange posts body to the route on request/response and returns the
// status.
func (s *Server) Exchange(body string) int {
	s.t.Helper()
	resp, err := http.Post(s.URL, "text/plain; charset=utf-8", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.wait(s.next())
	return resp.StatusCode
}

// Fail opens a WebSocket, sends msg ("fail" or "panic") and waits for the
// connection to end (1011).
func (s *Server) Fail(msg string) {
	s.t.Helper()
	ws := s.dialWS()
	c := s.next()
	ws.WriteMessage(websocket.TextMessage, []byte(msg))
	read := drain(ws) // answers the close frame
	s.wait(c)
	ws.Close()
	<-read
}

// Flood opens a WebSocket that reads nothing and asks the handler for
// more than its send queue holds: the default overflow policy (close)
// closes it with 1008, once. Only once the connection is closing does
// the client read, to answer the close frame.
func (s *Server) Flood() {
	s.t.Helper()
	ws := s.dialWS()
	c := s.next()
	ws.WriteMessage(websocket.TextMessage, []byte("flood"))
	select {
	case <-c.Context().Done(): // closing: the policy applied
	case <-time.After(Timeout):
		s.t.Fatal("observetest: the flooded connection stays open")
	}
	read := drain(ws)
	s.wait(c)
	ws.Close()
	<-read
}

// drain reads ws until it fails; the returned channel closes then.
func drain(ws *websocket.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return done
}

func (s *Server) dialWS() *websocket.Conn {
	s.t.Helper()
	ws, _, err := websocket.DefaultDialer.DialContext(s.ctx(), "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return ws
}

// ResumeSSE opens an SSE stream, receives one message, drops the stream
// and opens another with Last-Event-ID (one resume), receives a second
// message there, and closes the session with 4000. Each way: 2 messages,
// "one" and "two", 6 bytes.
func (s *Server) ResumeSSE() {
	s.t.Helper()
	ctx := s.ctx()
	st := s.stream(ctx, "")
	c := s.next()
	var token string
	for ev := range st.events(s.t) {
		if ev.Type == sse.EventSession {
			var sess struct{ Token string }
			json.Unmarshal(ev.Data, &sess)
			token = sess.Token
			break
		}
	}
	s.post(ctx, token, 1, "one")
	var last string
	for ev := range st.events(s.t) {
		if ev.Type == "message" && string(ev.Data) == "one" {
			last = ev.ID
			break
		}
	}
	st.drop()
	st = s.stream(ctx, last)
	s.post(ctx, token, 2, "two")
	for ev := range st.events(s.t) {
		if ev.Type == "message" && string(ev.Data) == "two" {
			break
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, s.URL, strings.NewReader(`{"code":4000,"reason":"bye"}`))
	req.Header.Set(realtime.HeaderToken, token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	s.wait(c)
	st.drop()
}

// stream is one SSE GET.
type stream struct {
	cancel context.CancelFunc
	body   io.ReadCloser
	r      *sse.Reader
}

func (s *Server) stream(ctx context.Context, lastID string) *stream {
	s.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		s.t.Fatalf("observetest: SSE stream: %v %v", resp, err)
	}
	return &stream{cancel: cancel, body: resp.Body, r: sse.NewReader(resp.Body)}
}

// events yields the stream's events until it fails, which fails t.
func (st *stream) events(t testing.TB) func(yield func(sse.Event) bool) {
	return func(yield func(sse.Event) bool) {
		for {
			ev, err := st.r.Next()
			if err != nil {
				t.Fatalf("observetest: SSE stream ended: %v", err)
				return
			}
			if !yield(ev) {
				return
			}
		}
	}
}

func (st *stream) drop() {
	st.cancel()
	st.body.Close()
}

func (s *Server) post(ctx context.Context, token string, seq int, text string) {
	s.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader(text))
	req.Header.Set(realtime.HeaderToken, token)
	req.Header.Set(realtime.HeaderSeq, strconv.Itoa(seq))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		s.t.Fatalf("observetest: POST: %s", resp.Status)
	}
}

// Fallback dials with rtclient's defaults (WebSocket, then SSE, then
// long-polling); on a Server that refuses upgrades it lands on SSE. It
// sends one message ("hi", 2 bytes), reads its echo, closes with 4000 and
// returns the transport the client ended on.
func (s *Server) Fallback() realtime.Kind {
	s.t.Helper()
	ctx := s.ctx()
	cl, err := rtclient.Dial(ctx, s.URL, &rtclient.Options{Logger: quiet})
	if err != nil {
		s.t.Fatalf("observetest: dial: %v", err)
	}
	c := s.next()
	if err := cl.SendText(ctx, "hi"); err != nil {
		s.t.Fatal(err)
	}
	if _, err := cl.Receive(ctx); err != nil {
		s.t.Fatal(err)
	}
	k := cl.Transport()
	cl.Close(4000, "bye")
	s.wait(c)
	return k
}

// Foreign sends a request from a foreign origin, which the route refuses
// with 403 before any transport sees it.
func (s *Server) Foreign() int {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("Origin", "http://elsewhere.example")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
