package conformance_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// Request/response runs a whole connection per POST, so it shares the
// semantics that fit one exchange: order, close once, errors, panics,
// limits and origin checks.

type oneShot struct {
	status int
	body   string
	ctype  string
}

func (f *fixture) exchange(body string, h http.Header) oneShot {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return oneShot{resp.StatusCode, string(b), resp.Header.Get("Content-Type")}
}

var httpTransport = transport{kind: realtime.HTTP, server: longpoll.NewRequestResponse()}

func TestRequestResponseOrderAndClose(t *testing.T) {
	f := newFixture(t, httpTransport, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		c.SendText("1:" + m.Text())
		return c.SendText("2:" + m.Text())
	}}, realtime.Options{})
	got := f.exchange("hi", nil)
	var msgs []struct{ Type, Data string }
	if err := json.Unmarshal([]byte(got.body), &msgs); err != nil || got.status != http.StatusOK {
		t.Fatalf("%+v: %v", got, err)
	}
	if len(msgs) != 2 || msgs[0].Data != "1:hi" || msgs[1].Data != "2:hi" {
		t.Fatalf("got %+v", msgs)
	}
	c := f.nextOpen()
	f.nextClose()
	f.noMoreCloses(c)
	if calls := f.calls(c); calls != "open msg:hi close:1000" {
		t.Fatalf("calls: %s", calls)
	}
}

func TestRequestResponseFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func() error
		is   error
	}{
		{"error", func() error { return errBoom }, errBoom},
		{"panic", func() error { panic("boom") }, realtime.ErrHandlerPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, httpTransport, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
				if m.Text() == "fail" {
					return tc.fail()
				}
				return c.Send(m)
			}}, realtime.Options{})
			got := f.exchange("fail", nil)
			if got.status != http.StatusInternalServerError || !strings.Contains(got.body, `"code":1011`) || strings.Contains(got.body, "boom") {
				t.Fatalf("got %+v", got)
			}
			c := f.nextOpen()
			if cl := f.nextClose(); !errors.Is(cl.err, tc.is) {
				t.Fatalf("cause %v", cl.err)
			}
			f.noMoreCloses(c)
			if got := f.exchange("fine", nil); got.status != http.StatusOK || got.body != "fine" {
				t.Fatalf("the next request: %+v", got)
			}
		})
	}
}

func TestRequestResponseLimitsAndOrigin(t *testing.T) {
	f := newFixture(t, httpTransport, echo, realtime.Options{ReadLimit: 16})
	if got := f.exchange(strings.Repeat("x", 17), nil); got.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %+v", got)
	}
	if got := f.exchange("hi", http.Header{"Origin": {"http://evil.example"}}); got.status != http.StatusForbidden {
		t.Fatalf("foreign origin: %+v", got)
	}
	select {
	case c := <-f.opened:
		t.Fatalf("a refused request reached Open: %s", f.calls(c))
	default:
	}
}

// A slow handler's messages all make the answer: its sends are written by
// a writer goroutine while it runs (it outlives the callback's inline
// budget), and the answer waits for that writer.
func TestRequestResponseSlowHandlerLosesNothing(t *testing.T) {
	const n = 200
	f := newFixture(t, httpTransport, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		time.Sleep(5 * time.Millisecond) // the workload: a handler that takes its time, then answers
		for i := range n {
			c.SendText(fmt.Sprint(i))
		}
		return nil
	}}, realtime.Options{SendQueue: 2 * n})
	for range 20 {
		got := f.exchange("go", nil)
		var msgs []struct{ Type, Data string }
		if err := json.Unmarshal([]byte(got.body), &msgs); err != nil || len(msgs) != n {
			t.Fatalf("%d messages in the answer, want %d (%v)", len(msgs), n, err)
		}
		for i, m := range msgs {
			if m.Data != fmt.Sprint(i) {
				t.Fatalf("message %d is %q", i, m.Data)
			}
		}
		f.nextOpen()
		f.nextClose()
	}
}
