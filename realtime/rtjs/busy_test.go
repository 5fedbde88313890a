package rtjs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// post is one POST-back the server answered.
type post struct {
	seq, body string
	status    int
	at        time.Time // when it arrived
}

// statusRecorder keeps the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A POST answered 429 because the handler is behind is sent again with the
// same Realtime-Seq after Retry-After: every message is handled once and in
// order, and the client does not reconnect.
func TestBusyServerIsRetried(t *testing.T) {
	for kind, server := range map[string]realtime.Transport{"sse": sse.New(sse.Options{}), "longpoll": longpoll.New(longpoll.Options{})} {
		t.Run(kind, func(t *testing.T) {
			release := make(chan struct{})
			handled := make(chan string, 16)
			route := realtime.NewRoute(realtime.Funcs{
				OnMessage: func(c *realtime.Conn, m realtime.Message) error {
					if m.Text() == "0" { // hold the first message: the inbox fills up
						select {
						case <-release:
						case <-c.Context().Done():
						}
					}
					handled <- m.Text()
					return nil
				},
			}, &realtime.Options{Transports: []realtime.Transport{server}, Inbox: 1})

			var mu sync.Mutex
			var posts []post
			refused := make(chan struct{}, 16)
			mux := http.NewServeMux()
			mux.Handle(rtjs.Path, rtjs.Handler())
			mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get(realtime.HeaderSeq) == "" {
					route.ServeHTTP(w, r)
					return
				}
				at := time.Now()
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
				route.ServeHTTP(sw, r)
				mu.Lock()
				posts = append(posts, post{r.Header.Get(realtime.HeaderSeq), string(body), sw.status, at})
				mu.Unlock()
				if sw.status == http.StatusTooManyRequests {
					refused <- struct{}{}
				}
			})
			mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Write([]byte(testPage))
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				route.Shutdown(ctx)
				srv.Close()
			})

			ctx := newTab(t)
			if err := chromedp.Do(ctx,
				chromedp.Navigate(srv.URL+"/"),
				chromedp.Poll[chromedp.Void]("window.ready === true", chromedp.WithPollingTimeout(20*time.Second)),
				chromedp.Evaluate[chromedp.Void](pageHelpers),
				chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/busy", {transports: [%q]}));
for (let i = 0; i < 4; i++) c.send(String(i));
true`, kind)),
			); err != nil {
				t.Fatal(err)
			}
			select {
			case <-refused: // a message met the full inbox
			case <-time.After(20 * time.Second):
				t.Fatal("no POST was answered 429")
			}
			close(release)
			var got []string
			for range 4 {
				select {
				case m := <-handled:
					got = append(got, m)
				case <-time.After(20 * time.Second):
					t.Fatalf("handled %q, want 0 1 2 3", got)
				}
			}
			if !equal(got, []string{"0", "1", "2", "3"}) {
				t.Errorf("handled %q, want 0 1 2 3 once each, in order", got)
			}
			waitFor(t, ctx, `c.bufferedAmount === 0`, 10*time.Second)
			if s := eval[string](t, ctx, `c.state + " " + c.transport + " " + c.reconnects + " " + log.opens.length`); s != "open "+kind+" 0 1" {
				t.Errorf("client %s, want open on %s without reconnecting", s, kind)
			}

			// Each refused POST was sent again with the same seq and body,
			// and accepted; seqs follow the order of the messages.
			mu.Lock()
			defer mu.Unlock()
			accepted := map[string]string{} // seq -> body
			for _, p := range posts {
				switch p.status {
				case http.StatusNoContent:
					if b, dup := accepted[p.seq]; dup && b != p.body {
						t.Errorf("seq %s carried %q and %q", p.seq, b, p.body)
					}
					accepted[p.seq] = p.body
				case http.StatusTooManyRequests:
				default:
					t.Errorf("POST seq %s answered %d", p.seq, p.status)
				}
			}
			for i, p := range posts {
				if p.status != http.StatusTooManyRequests {
					continue
				}
				if accepted[p.seq] != p.body {
					t.Errorf("seq %s (%q) was refused and not sent again with the same seq: %+v", p.seq, p.body, posts)
				}
				// Not before the server's Retry-After (1 s; the timer's
				// granularity aside): it asked for the pause.
				for _, q := range posts[i+1:] {
					if q.seq == p.seq {
						pause := q.at.Sub(p.at)
						t.Logf("%s: seq %s sent again %v after its 429", kind, p.seq, pause.Round(time.Millisecond))
						if pause < 900*time.Millisecond {
							t.Errorf("seq %s sent again %v after a 429 with Retry-After: 1", p.seq, pause)
						}
						break
					}
				}
			}
			for i := range 4 {
				if b := accepted[fmt.Sprint(i+1)]; b != fmt.Sprint(i) {
					t.Errorf("seq %d carried %q, want %q: %+v", i+1, b, fmt.Sprint(i), posts)
				}
			}
		})
	}
}
