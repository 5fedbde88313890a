package rtjs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// behaviourRow is one row of PROTOCOL.md's table "What ends, what
// reconnects": what happens (close N, drop, negotiate N, post N) and the
// outcome (end, end N, reconnect, connect, delivered, refused, retry,
// resend).
type behaviourRow struct {
	what    string
	n       int
	outcome string
	code    int // for "end N"
}

func (r behaviourRow) String() string {
	if r.what == "drop" {
		return "drop"
	}
	return fmt.Sprintf("%s_%d", r.what, r.n)
}

var rowPattern = regexp.MustCompile("^\\| `(close|negotiate|post) ([0-9]+)`|^\\| `(drop)`")
var outcomePattern = regexp.MustCompile("^`(end|reconnect|connect|delivered|refused|retry|resend)(?: ([0-9]+))?`$")

// behaviourTable reads the table from transports/PROTOCOL.md, the rule
// both clients follow.
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
		cells := strings.Split(line, "|")
		o := outcomePattern.FindStringSubmatch(strings.TrimSpace(cells[2]))
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

// behaviourProxy answers the negotiation, or the first POSTs of a
// message, with a status of the row's, and counts the POSTs of each
// message body with their Realtime-Seq.
type behaviourProxy struct {
	negotiate int // status for the negotiation GET; 0 passes it on
	post      int // status for the first POST of "m1"; 0 passes it on
	postTimes int // how many to answer so: 1, or every one

	mu    sync.Mutex
	posts map[string][]string // body -> the Realtime-Seq of each POST
}

func (p *behaviourProxy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isNegotiation := r.Method == http.MethodGet && r.Header.Get("Upgrade") == "" && r.Header.Get("Realtime-Token") == "" &&
			r.URL.Query().Get("transport") == "" && strings.Contains(r.Header.Get("Accept"), "application/json")
		if isNegotiation && p.negotiate != 0 {
			http.Error(w, "negotiation refused by the test", p.negotiate)
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Realtime-Token") != "" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			if p.posts == nil {
				p.posts = map[string][]string{}
			}
			p.posts[string(body)] = append(p.posts[string(body)], r.Header.Get("Realtime-Seq"))
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
		next.ServeHTTP(w, r)
	})
}

func (p *behaviourProxy) seqs(body string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.posts[body]...)
}

// rowTransports are the transports a row applies to.
func rowTransports(r behaviourRow) []string {
	switch r.what {
	case "post":
		return []string{"sse", "longpoll"}
	case "negotiate":
		return []string{"websocket", "sse"}
	}
	return []string{"websocket", "sse", "longpoll"}
}

// TestBehaviour runs every row of PROTOCOL.md's table "What ends, what
// reconnects" against rtkit.js in Chromium, on each transport the row
// applies to. rtclient's TestBehaviour runs the same rows.
func TestBehaviour(t *testing.T) {
	for _, row := range behaviourTable(t) {
		for _, kind := range rowTransports(row) {
			t.Run(row.String()+"/"+kind, func(t *testing.T) {
				ctx := newTab(t)
				p := &behaviourProxy{postTimes: 1}
				switch row.what {
				case "negotiate":
					p.negotiate = row.n
				case "post":
					p.post = row.n
					if row.outcome == "refused" {
						p.postTimes = -1
					}
				}
				f := newFixture(t, p.wrap)
				f.open(t, ctx, fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/echo", {transports: [%q], minDelay: 20, maxDelay: 100}));
true`, kind))
				checkRow(t, ctx, f, p, row, kind)
			})
		}
	}
}

func checkRow(t *testing.T, ctx context.Context, f *fixture, p *behaviourProxy, row behaviourRow, kind string) {
	t.Helper()
	const wait = 10 * time.Second
	switch row.what {
	case "negotiate":
		if row.outcome == "end" {
			waitFor(t, ctx, `log.closes.length === 1`, wait)
			if got := eval[int](t, ctx, `log.closes[0].code`); got != row.code {
				t.Errorf("close code %d, want %d", got, row.code)
			}
			if n := eval[int](t, ctx, `log.opens.length`); n != 0 {
				t.Errorf("%d opens, want none", n)
			}
			return
		}
		waitFor(t, ctx, `c.state === "open" && c.transport === "`+kind+`"`, wait)
		run(t, ctx, `c.send("hello"); true`)
		waitFor(t, ctx, `log.msgs.includes("hello")`, wait)
		return
	case "close", "drop":
		run(t, ctx, `c.send("before"); true`)
		waitFor(t, ctx, `log.msgs.includes("before")`, wait)
		if row.what == "drop" {
			f.drop()
		} else {
			run(t, ctx, fmt.Sprintf(`c.send("close:%d"); true`, row.n))
		}
		if row.outcome == "end" {
			waitFor(t, ctx, `log.closes.length === 1 && c.state === "closed"`, wait)
			if got := eval[int](t, ctx, `log.closes[0].code`); got != row.code {
				t.Errorf("close code %d, want %d", got, row.code)
			}
			if n := eval[int](t, ctx, `log.opens.length`); n != 1 {
				t.Errorf("%d opens, want 1: the client reconnected", n)
			}
			return
		}
		waitFor(t, ctx, `log.opens.length === 2 && c.state === "open"`, wait)
		run(t, ctx, `c.send("after"); true`)
		waitFor(t, ctx, `log.msgs.includes("after")`, wait)
		gaps := eval[string](t, ctx, `JSON.stringify(log.gaps)`)
		want := `[{"after":null,"reason":"new connection"}]`
		if row.what == "drop" && kind != "websocket" {
			want = `[]` // the session resumed
		}
		if gaps != want {
			t.Errorf("gaps %s, want %s", gaps, want)
		}
		return
	}
	// post
	waitFor(t, ctx, `c.state === "open"`, wait)
	run(t, ctx, `c.send("m1"); true`)
	switch row.outcome {
	case "refused":
		waitFor(t, ctx, `log.refused.length === 1`, wait)
		if got := eval[string](t, ctx, `JSON.stringify(log.refused[0])`); got != fmt.Sprintf(`{"status":%d,"data":"m1"}`, row.n) {
			t.Errorf("refused event %s", got)
		}
		run(t, ctx, `c.send("m2"); true`)
		waitFor(t, ctx, `log.msgs.includes("m2")`, wait)
		if got := f.rec.messages(); !equal(got, []string{"m2"}) {
			t.Errorf("server got %q, want only m2", got)
		}
		if s := p.seqs("m1"); len(s) != 1 {
			t.Errorf("m1 was POSTed %d times (seqs %v): a refused message is never retried", len(s), s)
		}
	default: // delivered, retry, resend
		waitFor(t, ctx, `log.msgs.includes("m1")`, wait)
		if got := f.rec.messages(); !equal(got, []string{"m1"}) {
			t.Errorf("server got %q, want m1 once", got)
		}
		s := p.seqs("m1")
		want := 2
		if row.outcome == "delivered" {
			want = 1
		}
		if len(s) < want || (row.outcome != "resend" && len(s) != want) {
			t.Errorf("m1 was POSTed %d times, want %d", len(s), want)
		}
		if row.outcome == "retry" && len(s) == 2 && s[0] != s[1] {
			t.Errorf("a retry changed the seq: %v", s)
		}
		if row.outcome == "resend" {
			waitFor(t, ctx, `log.opens.length === 2`, wait) // the session was resumed
		}
		if n := eval[int](t, ctx, `log.refused.length`); n != 0 {
			t.Errorf("%d refused events", n)
		}
	}
}

// drop closes every connection. The browser retries a request whose
// reused connection closed under it, so the next few requests are cut
// too (f.cut), until the drop is one the page sees.
func (f *fixture) drop() {
	f.cut.Store(2)
	f.conns.Drop()
}

// The defaults of rtkit.js are PROTOCOL.md's "Timeouts and defaults",
// which rtclient shares (its TestDefaultsMatchProtocol).
func TestDefaultsMatchProtocol(t *testing.T) {
	doc, err := os.ReadFile("../../transports/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `[a-zA-Z]+` \\| `([a-zA-Z]+)` \\| (?:`[A-Za-z]+`|–) \\| ([0-9]+)(?: ms)? \\|")
	want := map[string]float64{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			want[m[1]], _ = strconv.ParseFloat(m[2], 64)
		}
	}
	if len(want) < 6 {
		t.Fatalf("PROTOCOL.md: %d rows in the defaults table", len(want))
	}
	out := runNode(t, "--input-type=module", "-e", `import {defaults} from "./rtkit.js"; console.log(JSON.stringify(defaults));`)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("defaults %s: %v", out, err)
	}
	for name, w := range want {
		if g, ok := got[name].(float64); !ok || g != w {
			t.Errorf("defaults.%s = %v, PROTOCOL.md says %v", name, got[name], w)
		}
	}
}
