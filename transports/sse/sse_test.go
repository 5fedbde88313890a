package sse_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports/sse"
)

// server runs a route over SSE on loopback; conns receives every
// connection as it opens and closed every cause as it closes.
type server struct {
	*httptest.Server
	route    *realtime.Route
	conns    chan *realtime.Conn
	closed   chan error
	accepted *realtimetest.Listener // to drop every connection, streams taken over included
}

func newServer(t *testing.T, h realtime.Funcs, o realtime.Options) *server {
	t.Helper()
	s := &server{conns: make(chan *realtime.Conn, 16), closed: make(chan error, 16)}
	open, closeFn := h.OnOpen, h.OnClose
	h.OnOpen = func(c *realtime.Conn) error {
		s.conns <- c
		if open != nil {
			return open(c)
		}
		return nil
	}
	h.OnClose = func(c *realtime.Conn, err error) {
		if closeFn != nil {
			closeFn(c, err)
		}
		s.closed <- err
	}
	o.Transports = []realtime.Transport{sse.New(sse.Options{})}
	s.route = realtime.NewRoute(h, &o)
	s.Server = httptest.NewUnstartedServer(s.route)
	s.accepted = &realtimetest.Listener{Listener: s.Server.Listener}
	s.Server.Listener = s.accepted
	s.Server.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.route.Shutdown(ctx)
		s.Server.Close()
	})
	return s
}

// stream is a client's view of one event stream.
type stream struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	events chan sse.Event
	errc   chan error
}

func (s *server) open(t *testing.T, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("stream: %s", resp.Status)
	}
	st := &stream{t: t, resp: resp, cancel: cancel, events: make(chan sse.Event, 64), errc: make(chan error, 1)}
	go func() {
		r := sse.NewReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				st.errc <- err
				close(st.events)
				return
			}
			st.events <- ev
		}
	}()
	t.Cleanup(st.drop)
	return st
}

// drop ends the stream as a vanished client would.
func (st *stream) drop() {
	st.cancel()
	st.resp.Body.Close()
	for range st.events {
	}
}

func (st *stream) next() sse.Event {
	st.t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			st.t.Fatalf("stream ended: %v", <-st.errc)
		}
		return ev
	case <-time.After(5 * time.Second):
		st.t.Fatal("no event within 5s")
	}
	panic("unreachable")
}

// ended waits for the server to end the stream.
func (st *stream) ended() {
	st.t.Helper()
	select {
	case _, ok := <-st.events:
		if ok {
			st.t.Fatal("event after the close event")
		}
	case <-time.After(5 * time.Second):
		st.t.Fatal("stream not ended within 5s")
	}
}

type session struct{ ID, Token, Transport string }

func (st *stream) session() session {
	st.t.Helper()
	ev := st.next()
	if ev.Type != sse.EventSession {
		st.t.Fatalf("first event %q, want %q", ev.Type, sse.EventSession)
	}
	var s session
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		st.t.Fatal(err)
	}
	if want := s.Token + ".0"; ev.ID != want {
		st.t.Errorf("session event id %q, want %q", ev.ID, want)
	}
	return s
}

func post(t *testing.T, url, token string, seq int, body string, h http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set(realtime.HeaderToken, token)
	if seq > 0 {
		req.Header.Set(realtime.HeaderSeq, strconv.Itoa(seq))
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing within 5s")
	}
	panic("unreachable")
}

var echo = realtime.Funcs{
	OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
}

func TestSessionEventAndEcho(t *testing.T) {
	s := newServer(t, echo, realtime.Options{})
	st := s.open(t, nil)
	if ct := st.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	sess := st.session()
	c := recv(t, s.conns)
	if sess.ID != c.ID() || sess.Transport != "sse" || len(sess.Token) < 26 || sess.Token == sess.ID {
		t.Fatalf("session event %+v, conn id %s", sess, c.ID())
	}
	for i, text := range []string{"one", "two\nlines", ""} {
		if code, body := post(t, s.URL, sess.Token, i+1, text, nil); code != http.StatusNoContent {
			t.Fatalf("post: %d %s", code, body)
		}
		ev := st.next()
		if ev.Type != "message" || string(ev.Data) != text || ev.ID != sess.Token+"."+strconv.Itoa(i+1) {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
}

func TestBinaryMessagesAreBase64Events(t *testing.T) {
	s := newServer(t, echo, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	payload := []byte{0, 1, 2, 0xff, '\n', '\r'}
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	if code, _ := post(t, s.URL, sess.Token, 1, string(payload), h); code != http.StatusNoContent {
		t.Fatal(code)
	}
	ev := st.next()
	got, err := base64.StdEncoding.DecodeString(string(ev.Data))
	if ev.Type != sse.EventBinary || err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("event %+v (%v)", ev, err)
	}
}

func TestTextCannotInjectFields(t *testing.T) {
	s := newServer(t, realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { return c.SendText("a\nevent: evil\rid: 9\r\ndata: x") },
	}, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	ev := st.next()
	if ev.Type != "message" || ev.ID != sess.Token+".1" || string(ev.Data) != "a\nevent: evil\nid: 9\ndata: x" {
		t.Fatalf("event %+v", ev)
	}
}

func TestPostsArriveInSeqOrderOnce(t *testing.T) {
	got := make(chan string, 16)
	s := newServer(t, realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { got <- m.Text(); return nil },
	}, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	// 3 and 2 arrive before 1; 2 is retried.
	for _, seq := range []int{3, 2, 2, 1, 1, 4} {
		if code, body := post(t, s.URL, sess.Token, seq, "m"+strconv.Itoa(seq), nil); code != http.StatusNoContent {
			t.Fatalf("post %d: %d %s", seq, code, body)
		}
	}
	for want := 1; want <= 4; want++ {
		if m := recv(t, got); m != "m"+strconv.Itoa(want) {
			t.Fatalf("message %d = %q", want, m)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("duplicate delivery %q", m)
	default:
	}
	if code, _ := post(t, s.URL, sess.Token, 100, "far", nil); code != http.StatusConflict {
		t.Errorf("seq far ahead: %d, want 409", code)
	}
}

func TestResumeDeliversMissedMessagesOnce(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	c := recv(t, s.conns)
	c.SendText("m1")
	c.SendText("m2")
	if ev := st.next(); string(ev.Data) != "m1" {
		t.Fatal(ev)
	}
	if ev := st.next(); string(ev.Data) != "m2" {
		t.Fatal(ev)
	}
	st.drop()
	for _, m := range []string{"m3", "m4", "m5"} {
		if err := c.SendText(m); err != nil {
			t.Fatal(err)
		}
	}
	st2 := s.open(t, http.Header{"Last-Event-Id": {sess.Token + ".2"}})
	for i, want := range []string{"m3", "m4", "m5"} {
		ev := st2.next()
		if string(ev.Data) != want || ev.ID != sess.Token+"."+strconv.Itoa(i+3) {
			t.Fatalf("after resume: %+v, want %s", ev, want)
		}
	}
	c.SendText("m6")
	if ev := st2.next(); string(ev.Data) != "m6" {
		t.Fatalf("live after resume: %+v", ev)
	}
	select {
	case err := <-s.closed:
		t.Fatalf("handler saw a close during a resume: %v", err)
	default:
	}
}

func TestResumeBeyondBufferSendsGap(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{ResumeBuffer: 2, Overflow: realtime.OverflowDropOldest})
	st := s.open(t, nil)
	sess := st.session()
	c := recv(t, s.conns)
	c.SendText("m1")
	st.next()
	st.drop()
	for _, m := range []string{"m2", "m3", "m4", "m5"} {
		c.SendText(m)
	}
	st2 := s.open(t, http.Header{"Last-Event-Id": {sess.Token + ".1"}})
	ev := st2.next()
	if ev.Type != sse.EventGap || string(ev.Data) != `{"after":1}` {
		t.Fatalf("want a gap event, got %+v", ev)
	}
	for _, want := range []string{"m4", "m5"} {
		if ev := st2.next(); string(ev.Data) != want {
			t.Fatalf("got %+v, want %s", ev, want)
		}
	}
}

func TestUnknownLastEventIDStartsAFreshSessionWithAGap(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{})
	st := s.open(t, http.Header{"Last-Event-Id": {"NOSUCHTOKEN.7"}})
	ev := st.next()
	if ev.Type != sse.EventGap || !strings.Contains(string(ev.Data), "unknown session") {
		t.Fatalf("want a gap event first, got %+v", ev)
	}
	st.session()
}

func TestTokenMisuse(t *testing.T) {
	identity := func(r *http.Request) string { return r.Header.Get("X-User") }
	s := newServer(t, echo, realtime.Options{Identity: identity, AllowedOrigins: []string{"http://other.example"}})
	alice := http.Header{"X-User": {"alice"}}
	st := s.open(t, alice)
	sess := st.session()
	cases := []struct {
		name   string
		token  string
		header http.Header
	}{
		{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAA", alice},
		{"public id as token", sess.ID, alice},
		{"another identity", sess.Token, http.Header{"X-User": {"mallory"}}},
		{"no identity", sess.Token, nil},
		{"another allowed origin", sess.Token, http.Header{"X-User": {"alice"}, "Origin": {"http://other.example"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, s.URL, tc.token, 1, "x", tc.header)
			if code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
				t.Fatalf("got %d %s, want 404 with a JSON error", code, body)
			}
		})
	}
	// The right token still works, and only for its own stream.
	if code, _ := post(t, s.URL, sess.Token, 1, "mine", alice); code != http.StatusNoContent {
		t.Fatal(code)
	}
	if ev := st.next(); string(ev.Data) != "mine" {
		t.Fatal(ev)
	}
	// A closed session's token is dead.
	c := recv(t, s.conns)
	c.Close(realtime.CloseNormal, "done")
	recv(t, s.closed)
	if code, _ := post(t, s.URL, sess.Token, 2, "late", alice); code != http.StatusNotFound {
		t.Errorf("post after close: %d, want 404", code)
	}
}

func TestForeignOriginRefused(t *testing.T) {
	s := newServer(t, echo, realtime.Options{})
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got %s, want 403", resp.Status)
	}
}

func TestWrongMethod(t *testing.T) {
	s := newServer(t, echo, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	req, _ := http.NewRequest(http.MethodPut, s.URL, strings.NewReader("x"))
	req.Header.Set(realtime.HeaderToken, sess.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("got %s, want 405 with Allow", resp.Status)
	}
}

func TestOversizedPostClosesWith1009(t *testing.T) {
	s := newServer(t, echo, realtime.Options{ReadLimit: 8})
	st := s.open(t, nil)
	sess := st.session()
	if code, _ := post(t, s.URL, sess.Token, 1, "far too long", nil); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413", code)
	}
	ev := st.next()
	if ev.Type != sse.EventClose || !strings.Contains(string(ev.Data), `"code":1009`) {
		t.Fatalf("want a close event with 1009, got %+v", ev)
	}
	st.ended()
	if err := recv(t, s.closed); !errors.Is(err, realtime.ErrReadLimit) {
		t.Fatalf("cause %v", err)
	}
}

func TestServerCloseAndClientDelete(t *testing.T) {
	s := newServer(t, realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return &realtime.CloseError{Code: 4001, Reason: "asked to"}
		},
	}, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	post(t, s.URL, sess.Token, 1, "close please", nil)
	ev := st.next()
	if ev.Type != sse.EventClose || string(ev.Data) != `{"code":4001,"reason":"asked to"}` {
		t.Fatalf("got %+v", ev)
	}
	st.ended()
	if code := realtime.CloseStatus(recv(t, s.closed)); code != 4001 {
		t.Fatalf("handler close code %d", code)
	}

	st = s.open(t, nil)
	sess = st.session()
	req, _ := http.NewRequest(http.MethodDelete, s.URL, strings.NewReader(`{"code":4002,"reason":"bye"}`))
	req.Header.Set(realtime.HeaderToken, sess.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", err, resp)
	}
	if err := recv(t, s.closed); realtime.CloseStatus(err) != 4002 {
		t.Fatalf("handler cause %v", err)
	}
}

func TestDetachedSessionClosesAfterResumeWindow(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{ResumeWindow: 50 * time.Millisecond})
	st := s.open(t, nil)
	st.session()
	st.drop()
	err := recv(t, s.closed)
	if !errors.Is(err, realtime.ErrResumeTimeout) || realtime.CloseStatus(err) != realtime.CloseAbnormal {
		t.Fatalf("cause %v", err)
	}
}

func TestHandlerPanicClosesWith1011(t *testing.T) {
	s := newServer(t, realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { panic("boom") },
	}, realtime.Options{Logger: discard()})
	st := s.open(t, nil)
	sess := st.session()
	post(t, s.URL, sess.Token, 1, "x", nil)
	ev := st.next()
	if ev.Type != sse.EventClose || string(ev.Data) != `{"code":1011,"reason":"internal error"}` {
		t.Fatalf("got %+v", ev)
	}
	if err := recv(t, s.closed); !errors.Is(err, realtime.ErrHandlerPanic) {
		t.Fatalf("cause %v", err)
	}
}

// A backlog that fills while the client is away keeps the newest
// ResumeBuffer messages: the client that comes back is told of the gap,
// then receives what was kept, and the connection lives on. (Before, the
// connection was closed as a slow consumer while nobody was reading.)
func TestResumeAfterBacklogOverflowIsAGap(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{ResumeBuffer: 2, SendQueue: 1 << 20})
	st := s.open(t, nil)
	sess := st.session()
	c := recv(t, s.conns)
	c.SendText("m1")
	st.next()
	st.drop()
	// Until the server notices the dropped stream, messages still go to
	// it (the queue is deep enough for that while), and once it has, they
	// pile up in the backlog and the oldest go.
	n := 1
	for c.Dropped() == 0 {
		n++
		if n > 100000 {
			t.Fatal("the backlog never overflowed")
		}
		if err := c.SendText(fmt.Sprint("m", n)); err != nil {
			t.Fatal(err)
		}
		runtime.Gosched()
	}
	st2 := s.open(t, http.Header{"Last-Event-Id": {sess.Token + ".1"}})
	if ev := st2.next(); ev.Type != sse.EventGap || string(ev.Data) != `{"after":1}` {
		t.Fatalf("got %+v, want a gap after 1", ev)
	}
	// Then the kept messages and any still queued behind them, in order
	// and without a hole, up to the last one sent; not the first ones.
	var k int
	ev := st2.next()
	if _, err := fmt.Sscanf(string(ev.Data), "m%d", &k); err != nil || k <= 2 {
		t.Fatalf("got %+v after the gap, want a message after the lost ones", ev)
	}
	for k < n {
		k++
		if ev := st2.next(); string(ev.Data) != fmt.Sprint("m", k) {
			t.Fatalf("got %+v, want m%d", ev, k)
		}
	}
	c.SendText("live")
	if ev := st2.next(); string(ev.Data) != "live" {
		t.Fatalf("got %+v, want the live message", ev)
	}
	if c.Cause() != nil {
		t.Fatalf("connection closed: %v", c.Cause())
	}
}

func TestKeepaliveComments(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{PingInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/?transport=sse", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 0, 4096)
	for !bytes.Contains(buf, []byte("\n\n: ping\n")) {
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		if err != nil {
			t.Fatalf("no keepalive comment in %q: %v", buf, err)
		}
		buf = buf[:len(buf)+n]
	}
}
