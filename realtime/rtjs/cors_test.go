package rtjs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// corsPage connects to the route at ?url= over the transport ?t= and
// reports in window.result what came back, and in window.states its
// state changes.
const corsPage = `<!doctype html><script type="module">
import {RealtimeClient} from "/rtkit/rtkit.js";
const p = new URLSearchParams(location.search);
const c = new RealtimeClient(p.get("url"), {transports: [p.get("t")], maxRetries: 2, minDelay: 50, maxDelay: 100});
c.onopen = () => c.send("hello from another origin");
c.onmessage = (e) => { window.result = e.data; c.close(1000, "done"); };
window.states = [];
c.addEventListener("statechange", (e) => window.states.push(e.state + " " + (e.code ?? "") + " " + (e.error ?? "")));
</script>`

// A page on one origin reaches a route on another that allows it, over
// every transport of the fallback chain (WebSocket; SSE with its
// POST-backs, which need CORS preflights; long-polling), and a page on an
// origin the route does not allow reaches it over none.
func TestCrossOriginFallbackChain(t *testing.T) {
	pages := func() *httptest.Server {
		mux := http.NewServeMux()
		mux.Handle(rtjs.Path, rtjs.Handler())
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, corsPage)
		})
		return httptest.NewServer(mux)
	}
	allowed, foreign := pages(), pages()
	defer allowed.Close()
	defer foreign.Close()

	var opened atomic.Int32
	route := realtime.NewRoute(realtime.Funcs{
		OnOpen:    func(c *realtime.Conn) error { opened.Add(1); return nil },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
	}, &realtime.Options{
		Transports:     []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
		AllowedOrigins: []string{allowed.URL},
	})
	api := httptest.NewServer(route)
	defer api.Close()
	defer route.Shutdown(t.Context())

	for _, kind := range []string{"websocket", "sse", "longpoll"} {
		t.Run(kind, func(t *testing.T) {
			tab := newTab(t)
			if err := chromedp.Do(tab, chromedp.Navigate(allowed.URL+"/?t="+kind+"&url="+api.URL+"/echo")); err != nil {
				t.Fatal(err)
			}
			got, err := chromedp.Run(tab, chromedp.Poll[string](`window.result`, chromedp.WithPollingTimeout(20*time.Second)))
			if err != nil {
				t.Fatalf("no echo from the allowed origin: %v", err)
			}
			if got != "hello from another origin" {
				t.Fatalf("got %q", got)
			}

			before := opened.Load()
			tab = newTab(t)
			if err := chromedp.Do(tab, chromedp.Navigate(foreign.URL+"/?t="+kind+"&url="+api.URL+"/echo")); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.states.some((s) => s.startsWith("closed"))`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
				states, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(window.states)`))
				t.Fatalf("the client of a foreign origin did not give up: %v; states %s", err, states)
			}
			result, _ := chromedp.Run(tab, chromedp.Evaluate[string](`String(window.result)`))
			if result != "undefined" || opened.Load() != before {
				t.Fatalf("a foreign origin got through: result %v, %d opens", result, opened.Load()-before)
			}
		})
	}
}
