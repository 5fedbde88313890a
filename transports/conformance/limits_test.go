package conformance_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// refusedWith asserts that a dial over a cap is refused, the way each
// transport can say so: a WebSocket is upgraded and closed with 1013 and
// the reason (browsers cannot read a handshake's status), SSE and
// long-poll get the status with a JSON error, the in-memory pipe the
// error.
func refusedWith(t *testing.T, tr transport, p peer, err error, status int, sentinel error, reason string) {
	t.Helper()
	switch tr.kind {
	case realtime.WebSocket:
		if err != nil {
			t.Fatalf("dial: %v, want an upgrade closed with 1013", err)
		}
		if ce := closeOf(t, p); ce.Code != realtime.CloseTryAgainLater || ce.Reason != reason {
			t.Fatalf("closed with %v, want 1013 %q", ce, reason)
		}
	case realtime.Memory:
		if !errors.Is(err, sentinel) {
			t.Fatalf("dial: %v, want %v", err, sentinel)
		}
	default:
		if statusOf(err) != status {
			t.Fatalf("dial: %v, want status %d", err, status)
		}
	}
}

// One client may hold MaxConnsPerClient connections; the next is refused
// (429 on HTTP), others are not affected, and a closed connection frees
// its place.
func TestClientCap(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{MaxConnsPerClient: 2, ClientKey: func(r *http.Request) string { return r.Header.Get("X-User") }})
		ada := http.Header{"X-User": {"ada"}}
		a1 := f.dial(ada)
		c1 := f.nextOpen() // a1's: Open runs on a goroutine of its own
		a2 := f.dial(ada)
		f.nextOpen()
		p, err := f.tr.dial(t, f, ada)
		refusedWith(t, tr, p, err, http.StatusTooManyRequests, realtime.ErrClientLimit, "too many connections from this client")
		bob := f.dial(http.Header{"X-User": {"bob"}})
		f.nextOpen()
		bob.SendText("hi")
		if got := recv(t, bob); got != "hi" {
			t.Fatalf("another client: %q", got)
		}
		a1.Close(realtime.CloseNormal, "")
		<-c1.Done()
		a3 := f.dial(ada)
		f.nextOpen()
		a3.SendText("again")
		if got := recv(t, a3); got != "again" {
			t.Fatalf("after a place was freed: %q", got)
		}
		_ = a2
	})
}

// The route's cap, MaxConns, is on by default and refuses with 503 (1013
// on WebSocket) beyond it.
func TestRouteCap(t *testing.T) {
	if realtime.DefaultMaxConns <= 0 || realtime.DefaultMaxConnsPerClient <= 0 {
		t.Fatal("connection caps must be on by default")
	}
	each(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{MaxConns: 1})
		f.dial(nil)
		f.nextOpen()
		p, err := f.tr.dial(t, f, nil)
		refusedWith(t, tr, p, err, http.StatusServiceUnavailable, realtime.ErrTooManyConns, "too many connections")
	})
}

// The client of a request that comes through a trusted proxy is the
// address the proxy puts in X-Forwarded-For; from anyone else the header
// is ignored, so nobody can claim a fresh address per request.
func TestClientCapByForwardedAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		refused bool // the third connection, from another claimed address
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, false},
		{"untrusted peer", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, transports[2], echo, realtime.Options{MaxConnsPerClient: 2, TrustedProxies: tc.trusted})
			for i := range 2 {
				f.dial(http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.1, 10.0.0.%d", i)}})
				f.nextOpen()
			}
			// 10.0.0.x are the proxies' own hops only when trusted: the
			// client is then 203.0.113.1, which has two already.
			_, err := f.tr.dial(t, f, http.Header{"X-Forwarded-For": {"198.51.100.7"}})
			if tc.refused != (statusOf(err) == http.StatusTooManyRequests) {
				t.Fatalf("a third connection claiming another address: %v, refused %v", err, tc.refused)
			}
		})
	}
}

// A long-poll session that is opened and never polled expires soon, not
// after the resume window, and frees its place.
func TestNeverAttachedSessionExpires(t *testing.T) {
	f := newFixture(t, transports[3], echo, realtime.Options{ResumeWindow: time.Minute})
	req, _ := http.NewRequest(http.MethodPost, f.url+"?transport=longpoll", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := f.nextOpen()
	f.clock.Advance(10 * time.Second)
	if cl := f.nextClose(); !errors.Is(cl.err, realtime.ErrResumeTimeout) {
		t.Fatalf("cause %v", cl.err)
	}
	<-c.Done()
	if n := f.route.Len(); n != 0 {
		t.Fatalf("the route holds %d connections", n)
	}
}

// A new session waits at least a second for its first request, however
// short the resume window: a client that polls right after opening is not
// turned away because the machine was busy for a millisecond.
func TestNewSessionWaitsForItsFirstRequest(t *testing.T) {
	f := newFixture(t, transports[3], echo, realtime.Options{ResumeWindow: time.Millisecond})
	req, _ := http.NewRequest(http.MethodPost, f.url+"?transport=longpoll", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var open struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&open)
	resp.Body.Close()
	if err != nil || open.Token == "" {
		t.Fatalf("open: %v, token %q", err, open.Token)
	}
	c := f.nextOpen()
	f.clock.Advance(500 * time.Millisecond) // 500 resume windows
	req, _ = http.NewRequest(http.MethodPost, f.url, strings.NewReader("still here"))
	req.Header.Set(realtime.HeaderToken, open.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST 500 ms after opening: %d, want the message taken", resp.StatusCode)
	}
	f.clock.Advance(500 * time.Millisecond) // never attached: gone after a second
	if cl := f.nextClose(); !errors.Is(cl.err, realtime.ErrResumeTimeout) {
		t.Fatalf("cause %v", cl.err)
	}
	<-c.Done()
}

// A session nobody resumed within the resume window is forgotten at
// once: its token is unknown right after, not one window later.
func TestResumeTimeoutForgetsTheSession(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		f := newFixture(t, tr, echo, realtime.Options{ResumeWindow: 30 * time.Second})
		p := f.dial(nil)
		f.nextOpen()
		token := p.(resumer).Token()
		p.Drop()
		f.expire(30 * time.Second)
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("late"))
		req.Header.Set(realtime.HeaderToken, token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("POST with the expired token: %d, want 404", resp.StatusCode)
		}
	})
}

// A request body must arrive within ReadTimeout: a client that trickles
// one cannot hold the request (or the handler's inbox) open.
func TestSlowBodyIsCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   transport
	}{
		{"sse post-back", transports[2]},
		{"long-poll post-back", transports[3]},
		{"request/response", httpTransport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.tr, echo, realtime.Options{ReadTimeout: 200 * time.Millisecond})
			header := ""
			if tc.tr.kind != realtime.HTTP {
				p := f.dial(nil)
				f.nextOpen()
				header = realtime.HeaderToken + ": " + p.(resumer).Token() + "\r\n"
			}
			conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(f.url, "/"), "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Headers, then one byte of a 1000-byte body, then nothing.
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: 1000\r\n\r\nx", header)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("the server still waits for the body after 5s")
				}
				return // the server cut the connection: also fine
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("status %d for a body that never came", resp.StatusCode)
			}
		})
	}
}

// A text message must be UTF-8, however it arrives; a POSTed one that is
// not is refused with 400 and never reaches the handler.
func TestInvalidUTF8Posted(t *testing.T) {
	for _, tr := range []transport{transports[2], transports[3], httpTransport} {
		t.Run(string(tr.kind), func(t *testing.T) {
			f := newFixture(t, tr, echo, realtime.Options{})
			req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("bad \xff\xfe text"))
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			if tr.kind != realtime.HTTP {
				p := f.dial(nil)
				f.nextOpen()
				req.Header.Set(realtime.HeaderToken, p.(resumer).Token())
				req.Header.Set(realtime.HeaderSeq, "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "UTF-8") {
				t.Fatalf("%d %s, want 400 saying UTF-8", resp.StatusCode, b)
			}
		})
	}
}

// The origin check compares scheme, host and port: a page served over
// http may not reach a route served over https on the same host, and a
// trusted proxy's word on scheme and host counts, anyone else's not.
func TestOriginSchemeAndProxy(t *testing.T) {
	rt := realtime.NewRoute(echo, &realtime.Options{Transports: []realtime.Transport{transports[3].server}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, tc := range []struct {
		name, remote, origin string
		tls                  bool
		fwd                  map[string]string
		want                 int
	}{
		{"same origin", "192.0.2.1:5000", "https://chat.example", true, nil, http.StatusOK},
		{"http page, https route", "192.0.2.1:5000", "http://chat.example", true, nil, http.StatusForbidden},
		{"another port", "192.0.2.1:5000", "https://chat.example:8443", true, nil, http.StatusForbidden},
		{"explicit default port", "192.0.2.1:5000", "https://chat.example:443", true, nil, http.StatusOK},
		{"behind a trusted proxy", "10.1.2.3:5000", "https://chat.example", false, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}, http.StatusOK},
		{"untrusted forwarding headers", "192.0.2.1:5000", "https://chat.example", false, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/?transport=longpoll", nil)
			r.Host, r.RemoteAddr = "chat.example", tc.remote
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.Host = "backend:8080"
			}
			r.Header.Set("Origin", tc.origin)
			for k, v := range tc.fwd {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
		})
	}
}

// CORS for AllowedOrigins: an allowed origin's preflight is answered with
// exactly the methods and headers the protocol uses, its requests carry
// the headers the browser needs; a foreign origin gets none of it.
func TestCORS(t *testing.T) {
	rt := realtime.NewRoute(echo, &realtime.Options{Transports: []realtime.Transport{transports[2].server, transports[3].server}, AllowedOrigins: []string{"https://app.example"}})
	do := func(method, origin string, h map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://api.example/?transport=longpoll", nil)
		r.Header.Set("Origin", origin)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		return w
	}
	pre := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "realtime-token, realtime-seq, content-type"}
	w := do(http.MethodOptions, "https://app.example", pre)
	h := w.Header()
	if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", w.Code, h)
	}
	for _, want := range []string{"Authorization", "Content-Type", "Last-Event-ID", "Realtime-Token", "Realtime-Seq", "Realtime-Ack"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("allowed headers %q lack %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(h.Get("Vary"), "Origin") || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("preflight headers %v", h)
	}
	w = do(http.MethodPost, "https://app.example", nil) // a long-poll open
	if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("request from the allowed origin: %d %v", w.Code, w.Header())
	}
	for _, method := range []string{http.MethodOptions, http.MethodPost} {
		w = do(method, "https://evil.example", pre)
		if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s from a foreign origin: %d %v", method, w.Code, w.Header())
		}
	}
	// "*" lets any origin in, without credentials.
	any := realtime.NewRoute(echo, &realtime.Options{Transports: []realtime.Transport{transports[3].server}, AllowedOrigins: []string{"*"}})
	r := httptest.NewRequest(http.MethodOptions, "http://api.example/?transport=longpoll", nil)
	r.Header.Set("Origin", "https://anyone.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w = httptest.NewRecorder()
	any.ServeHTTP(w, r)
	if w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("\"*\": %v", w.Header())
	}
}
