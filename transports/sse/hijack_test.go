package sse_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/sse"
)

// Over HTTP/1.1 the stream's response is written by the transport itself:
// chunked, with "Connection: close" and the headers middleware set, and a client that closes its socket is noticed
// at once (PingInterval here is far beyond the test's patience).
func TestStreamTakesTheConnectionOver(t *testing.T) {
	closed := make(chan error, 1)
	rt := realtime.NewRoute(realtime.Funcs{OnClose: func(c *realtime.Conn, err error) { closed <- err }}, &realtime.Options{
		Transports:   []realtime.Transport{sse.New(sse.Options{})},
		PingInterval: time.Hour, ResumeWindow: time.Millisecond,
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Middleware", "kept")
		rt.ServeHTTP(w, r)
	}))
	defer ts.Close()
	defer rt.Shutdown(context.Background())

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: " + ts.Listener.Addr().String() + "\r\nAccept: text/event-stream\r\n\r\n"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !resp.Close || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, close %v, transfer-encoding %v: want 200, a chunked body and Connection: close", resp.StatusCode, resp.Close, resp.TransferEncoding)
	}
	for k, want := range map[string]string{"X-Middleware": "kept", "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil || ev.Type != sse.EventSession {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	c.Close()
	select {
	case err := <-closed:
		if !errors.Is(err, realtime.ErrResumeTimeout) {
			t.Errorf("cause %v, want ErrResumeTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's close was not noticed within 5s")
	}
}

// HTTP/2 cannot give its connection away: the stream is served through
// net/http, and works the same.
func TestStreamOverHTTP2(t *testing.T) {
	rt := realtime.NewRoute(echo, &realtime.Options{Transports: []realtime.Transport{sse.New(sse.Options{})}})
	ts := httptest.NewUnstartedServer(rt)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	defer rt.Shutdown(context.Background())

	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", resp.Proto)
	}
	r := sse.NewReader(resp.Body)
	ev, err := r.Next()
	if err != nil || ev.Type != sse.EventSession {
		t.Fatalf("first event %+v, %v", ev, err)
	}
}

// A resumed stream with nothing missed still gets its response head at
// once, before any event.
func TestResumedStreamHeadArrivesBeforeAnyEvent(t *testing.T) {
	s := newServer(t, realtime.Funcs{}, realtime.Options{})
	st := s.open(t, nil)
	sess := st.session()
	st.drop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", sess.Token+".0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resume: %s", resp.Status)
	}
}
