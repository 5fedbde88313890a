package rtclient_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
)

// behaviourRow is one row of PROTOCOL.md's table "What ends, what
// reconnects" (see realtime/rtjs's TestBehaviour, which runs the same
// rows against rtkit.js).
type behaviourRow struct {
	what    string // close, drop, negotiate, post
	n       int
	outcome string // end, reconnect, connect, delivered, refused, retry, resend
	code    int    // for end
}

func (r behaviourRow) String() string {
	if r.what == "drop" {
		return "drop"
	}
	return fmt.Sprintf("%s_%d", r.what, r.n)
}

var rowPattern = regexp.MustCompile("^\\| `(close|negotiate|post) ([0-9]+)`|^\\| `(drop)`")
var outcomePattern = regexp.MustCompile("^`(end|reconnect|connect|delivered|refused|retry|resend)(?: ([0-9]+))?`$")

func behaviourTable(t *testing.T) []behaviourRow {
	t.Helper()
	doc, err := os.ReadFile("../../transports/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []behaviourRow
	for _, line := range strings.Split(string(doc), "\n") {
		m := rowPattern.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		o := outcomePattern.FindStringSubmatch(strings.TrimSpace(strings.Split(line, "|")[2]))
		if o == nil {
			t.Fatalf("PROTOCOL.md: row %q has no outcome", line)
		}
		r := behaviourRow{what: m[1], outcome: o[1]}
		if m[3] != "" {
			r.what = m[3]
		} else {
			r.n, _ = strconv.Atoi(m[2])
		}
		if o[2] != "" {
			r.code, _ = strconv.Atoi(o[2])
		} else if r.outcome == "end" {
			r.code = r.n
		}
		rows = append(rows, r)
	}
	if len(rows) < 20 {
		t.Fatalf("PROTOCOL.md: %d rows in the behaviour table", len(rows))
	}
	return rows
}

// behaviourProxy answers the negotiation, or the first POSTs of "m1",
// with the row's status, and records the Realtime-Seq of every POST of
// each body.
type behaviourProxy struct {
	next      http.Handler
	negotiate int
	post      int
	postTimes int // -1: every one

	mu    sync.Mutex
	posts map[string][]string
}

func (p *behaviourProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isNegotiation := r.Method == http.MethodGet && r.Header.Get("Upgrade") == "" && r.Header.Get(realtime.HeaderToken) == "" &&
		r.URL.Query().Get("transport") == "" && strings.Contains(r.Header.Get("Accept"), "application/json")
	if isNegotiation && p.negotiate != 0 {
		http.Error(w, "negotiation refused by the test", p.negotiate)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get(realtime.HeaderToken) != "" {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		if p.posts == nil {
			p.posts = map[string][]string{}
		}
		p.posts[string(body)] = append(p.posts[string(body)], r.Header.Get(realtime.HeaderSeq))
		n := len(p.posts[string(body)])
		p.mu.Unlock()
		if string(body) == "m1" && p.post != 0 && p.post != http.StatusNoContent && (p.postTimes < 0 || n <= p.postTimes) {
			if p.post == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			http.Error(w, "refused by the test", p.post)
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

func (p *behaviourProxy) seqs(body string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.posts[body]...)
}

func rowKinds(r behaviourRow) []realtime.Kind {
	switch r.what {
	case "post":
		return []realtime.Kind{realtime.SSE, realtime.LongPoll}
	case "negotiate":
		return []realtime.Kind{realtime.WebSocket, realtime.SSE}
	}
	return allKinds
}

// TestBehaviour runs every row of PROTOCOL.md's table "What ends, what
// reconnects" against rtclient, on each transport the row applies to.
func TestBehaviour(t *testing.T) {
	for _, row := range behaviourTable(t) {
		for _, kind := range rowKinds(row) {
			t.Run(row.String()+"/"+string(kind), func(t *testing.T) {
				f := newFixture(t, nil)
				p := &behaviourProxy{next: f.route, postTimes: 1}
				switch row.what {
				case "negotiate":
					p.negotiate = row.n
				case "post":
					p.post = row.n
					if row.outcome == "refused" {
						p.postTimes = -1
					}
				}
				f.proxy.h = p
				checkRow(t, f, p, row, kind)
			})
		}
	}
}

func checkRow(t *testing.T, f *fixture, p *behaviourProxy, row behaviourRow, kind realtime.Kind) {
	ctx := testContext(t)
	if row.what == "negotiate" {
		c, err := rtclient.Dial(ctx, f.ts.URL, fastOptions(kind))
		if row.outcome == "end" {
			if ce := closeCode(t, err); ce.Code != row.code {
				t.Fatalf("Dial: close code %d, want %d", ce.Code, row.code)
			}
			return
		}
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close(realtime.CloseNormal, "")
		if c.Transport() != kind {
			t.Fatalf("transport %s", c.Transport())
		}
		c.SendText(ctx, "hello")
		if got := receiveText(t, ctx, c); got != "hello" {
			t.Fatalf("got %q", got)
		}
		return
	}
	c := dial(t, f.ts.URL, fastOptions(kind))
	switch row.what {
	case "close", "drop":
		c.SendText(ctx, "before")
		if got := receiveText(t, ctx, c); got != "before" {
			t.Fatalf("got %q", got)
		}
		if row.what == "drop" {
			f.drop()
		} else {
			c.SendText(ctx, fmt.Sprintf("close:%d", row.n))
		}
		if row.outcome == "end" {
			_, err := c.Receive(ctx)
			if ce := closeCode(t, err); ce.Code != row.code {
				t.Fatalf("close code %d, want %d", ce.Code, row.code)
			}
			if s := c.State(); s != rtclient.Closed {
				t.Fatalf("state %v, want closed", s)
			}
			return
		}
		wantGap := !(row.what == "drop" && kind != realtime.WebSocket) // a session resumes
		if wantGap {
			_, err := c.Receive(ctx)
			var gap *rtclient.GapError
			if !errors.As(err, &gap) || !gap.NewConnection || gap.Reason != "new connection" {
				t.Fatalf("Receive: %v, want a gap for a new connection", err)
			}
		}
		if err := c.SendText(ctx, "after"); err != nil {
			t.Fatal(err)
		}
		if got := receiveText(t, ctx, c); got != "after" {
			t.Fatalf("got %q, want the echo after reconnecting", got)
		}
		return
	}
	// post
	err := c.SendText(ctx, "m1")
	if row.outcome == "refused" {
		if err == nil {
			// Queued (the transport was not yet serving): the refusal
			// comes through Receive.
			_, err = c.Receive(ctx)
		}
		var re *rtclient.RefusedError
		if !errors.As(err, &re) || re.StatusCode != row.n || !errors.Is(err, rtclient.ErrRefused) || re.Message.Text() != "m1" {
			t.Fatalf("Send: %v, want a *RefusedError with status %d", err, row.n)
		}
	} else if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if row.outcome != "refused" {
		if got := receiveText(t, ctx, c); got != "m1" {
			t.Fatalf("got %q, want m1", got)
		}
	}
	if err := c.SendText(ctx, "m2"); err != nil {
		t.Fatalf("Send m2: %v", err)
	}
	if got := receiveText(t, ctx, c); got != "m2" {
		t.Fatalf("got %q, want m2 (m1 came twice, or after a refusal)", got)
	}
	s := p.seqs("m1")
	switch row.outcome {
	case "refused", "delivered":
		if len(s) != 1 {
			t.Fatalf("m1 was POSTed %d times (%v), want once", len(s), s)
		}
	case "retry":
		if len(s) != 2 || s[0] != s[1] {
			t.Fatalf("m1 was POSTed with seqs %v, want twice with the same", s)
		}
	case "resend":
		if len(s) < 2 {
			t.Fatalf("m1 was POSTed with seqs %v, want again after the resume", s)
		}
	}
}

// defaultsTable reads PROTOCOL.md's "Timeouts and defaults": the rtclient
// name of each setting (where it has one) and its default, in
// milliseconds for times.
func defaultsTable(t *testing.T) map[string]int64 {
	t.Helper()
	doc, err := os.ReadFile("../../transports/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `[a-zA-Z]+` \\| (?:`[a-zA-Z]+`|–) \\| `([A-Za-z]+)` \\| ([0-9]+)(?: ms)? \\|")
	out := map[string]int64{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
		}
	}
	if len(out) < 6 {
		t.Fatalf("PROTOCOL.md: %d rows in the defaults table", len(out))
	}
	return out
}

// The defaults are PROTOCOL.md's, which rtkit.js shares.
func TestDefaultsMatchProtocol(t *testing.T) {
	ours := map[string]int64{
		"UpgradeTimeout":    rtclient.DefaultUpgradeTimeout.Milliseconds(),
		"FirstEventTimeout": rtclient.DefaultFirstEventTimeout.Milliseconds(),
		"RequestTimeout":    rtclient.DefaultRequestTimeout.Milliseconds(),
		"MinBackoff":        rtclient.DefaultMinBackoff.Milliseconds(),
		"MaxBackoff":        rtclient.DefaultMaxBackoff.Milliseconds(),
		"SendQueue":         rtclient.DefaultSendQueue,
		"MaxEventSize":      rtclient.DefaultMaxEventSize,
	}
	doc := defaultsTable(t)
	for name, want := range doc {
		got, ok := ours[name]
		if !ok {
			t.Errorf("PROTOCOL.md lists %s, which this test does not know", name)
		} else if got != want {
			t.Errorf("%s: default %d, PROTOCOL.md says %d", name, got, want)
		}
	}
	for name := range ours {
		if _, ok := doc[name]; !ok {
			t.Errorf("PROTOCOL.md does not list %s", name)
		}
	}
}
