package rtjs_test

import (
	"context"
	_ "embed"
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
	"github.com/rtkit/rtkit/transports/websocket"
)

//go:embed testdata/fake-react.js
var fakeReact []byte

// reactPage renders one component that uses the hook; an import map points
// "react" at the test's hooks runtime.
const reactPage = `<!doctype html>
<script type="importmap">{"imports": {"react": "/fake-react.js"}}</script>
<script type="module">
import { render, unmount } from "/fake-react.js";
import { useRealtime } from "/rtkit/react.js";
const transport = new URLSearchParams(location.search).get("transport");
window.seen = [];
render(() => {
  const rt = useRealtime("/echo", { transports: [transport], onMessage: (e) => window.seen.push(e.data) });
  window.hook = rt;
});
window.unmount = unmount;
window.ready = true;
</script>`

// The React hook over each transport: it reports its state and transport,
// sends, shows the last message, and closes the connection on unmount.
func TestReactHook(t *testing.T) {
	var mu sync.Mutex
	var closes []string
	route := realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		OnClose: func(c *realtime.Conn, err error) {
			mu.Lock()
			defer mu.Unlock()
			if ce, ok := err.(*realtime.CloseError); ok {
				closes = append(closes, ce.Reason)
			}
		},
	}, &realtime.Options{Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}})
	mux := http.NewServeMux()
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("/echo", route)
	mux.HandleFunc("/fake-react.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(fakeReact)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(reactPage))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer route.Shutdown(t.Context())

	for _, tr := range []string{"websocket", "sse", "longpoll"} {
		t.Run(tr, func(t *testing.T) {
			tab := newTab(t)
			if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/?transport="+tr)); err != nil {
				t.Fatal(err)
			}
			waitForTab(t, tab, `window.hook && window.hook.state === "open" && window.hook.transport === "`+tr+`"`)
			run(t, tab, `window.hook.send("hello from react"); true`)
			waitForTab(t, tab, `window.hook.lastMessage && window.hook.lastMessage.data === "hello from react"`)
			if got := eval[[]string](t, tab, `window.seen`); len(got) != 1 || got[0] != "hello from react" {
				t.Fatalf("onMessage saw %q", got)
			}
			run(t, tab, `window.unmount(); true`)
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(closes)
				last := ""
				if n > 0 {
					last = closes[n-1]
				}
				mu.Unlock()
				if last == "unmounted" {
					mu.Lock()
					closes = nil
					mu.Unlock()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no close with reason \"unmounted\" after unmount (last %q)", last)
				}
				time.Sleep(10 * time.Millisecond) // polling the server's record, with a deadline
			}
		})
	}
}

func waitForTab(t *testing.T, tab context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(window.hook)`))
		t.Fatalf("waiting for %s: %v\nhook: %s", expr, err, state)
	}
}
