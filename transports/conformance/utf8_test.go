package conformance_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/realtime"
)

// invalidUTF8 are text messages that are not UTF-8: a lone continuation
// byte, a truncated rune, a UTF-16 surrogate half, an overlong encoding.
var invalidUTF8 = []string{"ok\x80", "caf\xc3", "\xed\xa0\x80", "\xc0\xaf", "a\xffb"}

// A text message must be UTF-8 on every transport (RFC 6455 section 8.1
// for WebSocket; browsers' EventSource and fetch cannot carry anything
// else to the other peers either). WebSocket closes with 1007; a POSTed
// text message (an SSE or long-poll POST-back) is refused with 400 and
// a reason, reaches no handler, and does not use up its Realtime-Seq: the
// session goes on, and the same seq with valid text is delivered. The
// same bytes as a binary message are fine.
func TestInvalidUTF8Refused(t *testing.T) {
	for _, tr := range transports {
		if tr.kind == realtime.Memory {
			continue // no wire: the in-memory harness carries Go values
		}
		t.Run(string(tr.kind), func(t *testing.T) {
			for _, bad := range invalidUTF8 {
				t.Run(strconv.Quote(bad), func(t *testing.T) {
					f := newFixture(t, tr, echo, realtime.Options{})
					p := f.dial(nil)
					c := f.nextOpen()
					if tr.kind == realtime.WebSocket {
						p.SendText(bad)
						if ce := closeOf(t, p); ce.Code != realtime.CloseInvalidData {
							t.Fatalf("peer saw %v, want 1007", ce)
						}
						if cl := f.nextClose(); realtime.CloseStatus(cl.err) != realtime.CloseInvalidData {
							t.Fatalf("handler's Close: %v", cl.err)
						}
						if got := f.calls(c); got != "open close:1007" {
							t.Fatalf("calls: %s", got)
						}
						return
					}
					s := sessionOf(p)
					seq := s.seq.Add(1)
					code, body := s.post(t, bad, "text/plain; charset=utf-8", seq)
					if code != http.StatusBadRequest || !strings.Contains(string(body), "UTF-8") {
						t.Fatalf("POST of %q: %d %s, want 400 naming UTF-8", bad, code, body)
					}
					// The same seq, now valid, is delivered: nothing was
					// used up.
					if code, body := s.post(t, "fine", "text/plain; charset=utf-8", seq); code != http.StatusNoContent {
						t.Fatalf("valid POST with the same seq: %d %s", code, body)
					}
					if got := recv(t, p); got != "fine" {
						t.Fatalf("echo %q", got)
					}
					if code, body := s.post(t, bad, "application/octet-stream", s.seq.Add(1)); code != http.StatusNoContent {
						t.Fatalf("the same bytes as binary: %d %s", code, body)
					}
					if got := recv(t, p); !strings.HasPrefix(got, "bin:") {
						t.Fatalf("binary echo %q", got)
					}
					if got := f.calls(c); !strings.HasPrefix(got, "open msg:fine msg:") || strings.Count(got, "msg:") != 2 {
						t.Fatalf("calls: %s", got)
					}
				})
			}
		})
	}
}

// Request/response refuses invalid text with 400 before any handler runs.
func TestRequestResponseInvalidUTF8Refused(t *testing.T) {
	f := newFixture(t, httpTransport, echo, realtime.Options{})
	for _, bad := range invalidUTF8 {
		got := f.exchange(bad, http.Header{"Content-Type": {"text/plain; charset=utf-8"}})
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "UTF-8") {
			t.Fatalf("%q: %+v, want 400 naming UTF-8", bad, got)
		}
	}
	select {
	case c := <-f.opened:
		t.Fatalf("a refused request reached Open: %s", f.calls(c))
	default:
	}
	got := f.exchange("\xff", http.Header{"Content-Type": {"application/octet-stream"}})
	if got.status != http.StatusOK || got.body != "\xff" {
		t.Fatalf("binary: %+v", got)
	}
}

// post POSTs body as one message with seq.
func (s *session) post(t *testing.T, body, ctype string, seq uint64) (int, []byte) {
	t.Helper()
	code, b, err := s.do(http.MethodPost, strings.NewReader(body), http.Header{
		realtime.HeaderToken: {s.token},
		realtime.HeaderSeq:   {strconv.FormatUint(seq, 10)},
		"Content-Type":       {ctype},
	})
	if err != nil {
		t.Fatal(err)
	}
	return code, b
}
