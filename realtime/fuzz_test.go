package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// FuzzBearerToken feeds BearerToken (auth middleware calls it on every
// request, before anything else) arbitrary Authorization and
// Sec-WebSocket-Protocol headers. It must not panic, returns at most what
// the headers hold, and a token offered as BearerSubprotocol, among any
// other subprotocols, comes back exactly; so does one in an
// Authorization: Bearer header, but for surrounding spaces.
func FuzzBearerToken(f *testing.F) {
	for _, tc := range [][3]string{
		{"", "rtkit, rtkit.bearer.dG9rZW4", "token"},
		{"Bearer abc", "", "abc"},
		{"bearer  spaced ", "", "x"},
		{"Basic dXNlcjpwYXNz", "rtkit.bearer.!!!", "\x00\xff"},
		{"Bearer", "rtkit.bearer.", ""},
		{"", "rtkit,rtkit.bearer.YQ,rtkit.bearer.Yg", "a,b c"},
	} {
		f.Add(tc[0], tc[1], tc[2])
	}
	f.Fuzz(func(t *testing.T, authorization, protocols, token string) {
		r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		if protocols != "" {
			r.Header.Set("Sec-WebSocket-Protocol", protocols)
		}
		if got := realtime.BearerToken(r); len(got) > len(authorization)+len(protocols) {
			t.Fatalf("BearerToken = %d bytes from %d bytes of headers", len(got), len(authorization)+len(protocols))
		}

		r, _ = http.NewRequest(http.MethodGet, "http://example.com/", nil)
		r.Header.Set("Sec-WebSocket-Protocol", realtime.Subprotocol+", "+realtime.BearerSubprotocol(token))
		if got := realtime.BearerToken(r); got != token {
			t.Fatalf("subprotocol round trip of %q: %q", token, got)
		}
		if p := realtime.BearerSubprotocol(token); strings.ContainsAny(p, ", \t\r\n") {
			t.Fatalf("BearerSubprotocol(%q) = %q is not a subprotocol token", token, p)
		}
		if tok := strings.TrimSpace(token); tok != "" && !strings.ContainsAny(tok, "\r\n\x00") {
			r, _ = http.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			if got := realtime.BearerToken(r); got != tok {
				t.Fatalf("header round trip of %q: %q", tok, got)
			}
		}
	})
}

// sessionRoute serves an echo route over long-polling in process (no
// sockets: the fuzzers run many inputs a second) and reports each message
// and each Close.
type sessionRoute struct {
	rt     *realtime.Route
	msgs   chan realtime.Message
	closed chan error
	n      atomic.Uint32
}

func newSessionRoute(f *testing.F) *sessionRoute {
	s := &sessionRoute{msgs: make(chan realtime.Message, 64), closed: make(chan error, 64)}
	s.rt = realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { s.msgs <- m; return nil },
		OnClose:   func(c *realtime.Conn, err error) { s.closed <- err },
	}, &realtime.Options{
		Transports: []realtime.Transport{longpoll.New(longpoll.Options{})},
		Logger:     slog.New(slog.DiscardHandler),
	})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.rt.Shutdown(ctx)
	})
	return s
}

// do serves one request, each from a client address of its own (so that
// no per-client cap is reached).
func (s *sessionRoute) do(method, query string, h http.Header, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://example.com/"+query, strings.NewReader(body))
	n := s.n.Add(1)
	r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", byte(n>>16), byte(n>>8), byte(n))
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.rt.ServeHTTP(w, r)
	return w
}

// open starts a long-poll session and returns its token.
func (s *sessionRoute) open(t *testing.T) string {
	t.Helper()
	w := s.do(http.MethodPost, "?transport=longpoll", nil, "")
	var out struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Token == "" {
		t.Fatalf("open: %d %s", w.Code, w.Body)
	}
	return out.Token
}

// end closes the session and waits for its Close.
func (s *sessionRoute) end(t *testing.T, token string) error {
	t.Helper()
	s.do(http.MethodDelete, "", http.Header{realtime.HeaderToken: {token}}, "")
	return s.awaitClose(t)
}

func (s *sessionRoute) awaitClose(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.closed:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no Close within 5s")
		return nil
	}
}

// FuzzPostSeq POSTs a message with any Realtime-Seq header to a fresh
// session. It must not panic or answer 5xx; a header that is not a
// positive decimal integer is refused with 400 and delivers nothing;
// the first message (seq 1, or no seq) reaches the handler.
func FuzzPostSeq(f *testing.F) {
	for _, s := range []string{"", "1", "2", "0", "-1", "+1", "01", " 1", "1 ", "1.0", "0x1", "1_0", "18446744073709551615", "18446744073709551616", "99999999999999999999999", "\u0661"} {
		f.Add(s)
	}
	sr := newSessionRoute(f)
	f.Fuzz(func(t *testing.T, seq string) {
		if strings.ContainsAny(seq, "\r\n\x00") {
			return // not a header value net/http would deliver
		}
		token := sr.open(t)
		h := http.Header{realtime.HeaderToken: {token}, "Content-Type": {"application/octet-stream"}}
		if seq != "" {
			h.Set(realtime.HeaderSeq, seq)
		}
		w := sr.do(http.MethodPost, "", h, "data")
		n, err := strconv.ParseUint(strings.TrimSpace(h.Get(realtime.HeaderSeq)), 10, 64)
		valid := h.Get(realtime.HeaderSeq) == "" || err == nil && n > 0 && strings.TrimSpace(h.Get(realtime.HeaderSeq)) == h.Get(realtime.HeaderSeq)
		switch {
		case w.Code >= 500:
			t.Fatalf("seq %q: %d %s", seq, w.Code, w.Body)
		case !valid && w.Code != http.StatusBadRequest:
			t.Fatalf("invalid seq %q: %d, want 400", seq, w.Code)
		case valid && w.Code == http.StatusBadRequest:
			t.Fatalf("valid seq %q refused: %s", seq, w.Body)
		case valid && (n <= 1) && w.Code != http.StatusNoContent:
			t.Fatalf("seq %q: %d %s, want 204", seq, w.Code, w.Body)
		}
		if valid && n <= 1 {
			select {
			case m := <-sr.msgs:
				if string(m.Data) != "data" {
					t.Fatalf("delivered %q", m.Data)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("seq %q: accepted, never delivered", seq)
			}
		}
		sr.end(t, token)
		select {
		case m := <-sr.msgs:
			t.Fatalf("seq %q: an extra message %q", seq, m.Data)
		default:
		}
	})
}

// FuzzDeleteBody closes a fresh session with any DELETE body. It must not
// panic or answer 5xx; it answers 204 or 400. After a 204 the handler's
// Close has the code asked for (1000 when none) and a reason that fits a
// close frame; after a 400 the session is still open.
func FuzzDeleteBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"code":1000}`, `{"code":4001,"reason":"bye"}`, `{"code":1005}`, `{"code":999}`, `{"code":5000}`,
		`{"code":1000.5}`, `{"code":"1000"}`, `{"reason":"` + strings.Repeat("\u00e9", 100) + `"}`, `{"reason":"\ud800"}`, `{"code":3000,"reason":"\xff"}`,
		`[]`, `null`, `{`, `{"code":1000}` + strings.Repeat(" ", 1100)} {
		f.Add(s)
	}
	sr := newSessionRoute(f)
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 4096 {
			body = body[:4096]
		}
		token := sr.open(t)
		w := sr.do(http.MethodDelete, "", http.Header{realtime.HeaderToken: {token}}, body)
		switch w.Code {
		case http.StatusNoContent:
			var req struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			}
			json.NewDecoder(io.LimitReader(strings.NewReader(body), 1024)).Decode(&req)
			if req.Code == 0 {
				req.Code = realtime.CloseNormal
			}
			var ce *realtime.CloseError
			err := sr.awaitClose(t)
			if !asCloseError(err, &ce) || ce.Code != req.Code {
				t.Fatalf("DELETE %q: Close %v, want code %d", body, err, req.Code)
			}
			if len(ce.Reason) > 123 || !utf8.ValidString(ce.Reason) || !strings.HasPrefix(req.Reason, ce.Reason) {
				t.Fatalf("DELETE %q: reason %q", body, ce.Reason)
			}
		case http.StatusBadRequest:
			h := http.Header{realtime.HeaderToken: {token}, "Content-Type": {"application/octet-stream"}}
			if w := sr.do(http.MethodPost, "", h, "still open"); w.Code != http.StatusNoContent {
				t.Fatalf("after a refused DELETE %q: POST %d %s", body, w.Code, w.Body)
			}
			<-sr.msgs
			sr.end(t, token)
		default:
			t.Fatalf("DELETE %q: %d %s", body, w.Code, w.Body)
		}
	})
}

func asCloseError(err error, ce **realtime.CloseError) bool {
	c, ok := err.(*realtime.CloseError)
	*ce = c
	return ok
}
