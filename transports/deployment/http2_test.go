package deployment_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/browsertest"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// streams is how many SSE routes the page opens: more than the six
// connections per origin that browsers allow over HTTP/1.1.
const streams = 10

// streamsPage opens one EventSource on each of the routes /s/0 ... /s/9
// and counts the messages of each, and echoes one message over a
// WebSocket.
const streamsPage = `<!doctype html><script>
window.counts = new Array(%d).fill(0);
for (let i = 0; i < counts.length; i++) {
  new EventSource("/s/" + i + "?transport=sse").onmessage = () => counts[i]++;
}
window.echo = "";
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
ws.onopen = () => ws.send("over websocket");
ws.onmessage = (e) => window.echo = e.data;
</script>`

// streamsServer serves the page, the ten SSE routes and a WebSocket echo
// route over TLS, with HTTP/2 when h2 is set, and records the protocol
// of each SSE request.
type streamsServer struct {
	url    string
	mu     sync.Mutex
	protos map[string]int // "HTTP/2.0": requests
}

func newStreamsServer(t *testing.T, h2 bool) *streamsServer {
	s := &streamsServer{protos: map[string]int{}}
	var rs realtime.Server
	mux := http.NewServeMux()
	for i := range streams {
		mux.Handle(fmt.Sprintf("/s/%d", i), rs.Route(ticker(100*time.Millisecond), &realtime.Options{Transports: []realtime.Transport{sse.New(sse.Options{})}}))
	}
	mux.Handle("/ws", rs.Route(ticker(time.Hour), &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{})}}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, streamsPage, streams)
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/s/") {
			s.mu.Lock()
			s.protos[r.Proto]++
			s.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		rs.Shutdown(ctx)
		srv.Close()
	})
	s.url = srv.URL + "/"
	return s
}

// openPage loads the page in a tab that accepts the test server's
// certificate.
func openPage(t *testing.T, url string) context.Context {
	tab := browsertest.NewTab(t)
	if _, err := chromedp.Call(tab, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	return tab
}

func poll(t *testing.T, tab context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		counts, _ := chromedp.Run(tab, chromedp.Evaluate[[]int](`counts`))
		t.Fatalf("waiting for %s: %v; messages per stream: %v", expr, err, counts)
	}
}

// Over TLS and HTTP/2 one page holds ten SSE streams at once, each its
// own route: they are streams of one connection, not six connections of
// a browser's per-origin pool. Every stream keeps receiving, and a
// WebSocket on the same page still works (over HTTP/1.1: gorilla does
// not serve WebSocket over HTTP/2, and Go does not offer it).
func TestTenSSEStreamsOverHTTP2(t *testing.T) {
	s := newStreamsServer(t, true)
	tab := openPage(t, s.url)
	// Each stream has received five messages, then five more: all ten
	// are live at once, none waiting for another to end.
	poll(t, tab, `counts.every((n) => n >= 5)`)
	base, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`counts.slice()`))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, tab, fmt.Sprintf(`counts.every((n, i) => n >= %v[i] + 5)`, strings.ReplaceAll(fmt.Sprint(base), " ", ",")))
	poll(t, tab, `echo === "over websocket"`)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.protos["HTTP/2.0"] != streams || len(s.protos) != 1 {
		t.Fatalf("SSE requests by protocol: %v, want %d over HTTP/2.0", s.protos, streams)
	}
}

// The same page over HTTP/1.1 shows what HTTP/2 lifts: six streams are
// live, the other four wait for a connection.
func TestSSEStreamsOverHTTP1WaitForConnections(t *testing.T) {
	s := newStreamsServer(t, false)
	tab := openPage(t, s.url)
	poll(t, tab, `counts.filter((n) => n >= 5).length >= 6`)
	counts, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`counts.slice()`))
	if err != nil {
		t.Fatal(err)
	}
	live, waiting := 0, 0
	for _, n := range counts {
		switch {
		case n >= 5:
			live++
		case n == 0:
			waiting++
		}
	}
	if live != 6 || waiting != streams-6 {
		t.Fatalf("messages per stream %v: want 6 live and %d waiting", counts, streams-6)
	}
}
