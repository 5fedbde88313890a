package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/inspect"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With an address, Debug serves /metrics and the inspector on it (and
// nothing of them on the public address); the routes it made are named
// and observed, the topics it was given shown.
func TestDebugServesMetricsAndInspector(t *testing.T) {
	urls, debugURLs := make(chan string, 1), make(chan string, 1)
	d := &Debug{Addr: "127.0.0.1:0", Ready: func(u string) { debugURLs <- u }}
	var srv realtime.Server
	o := transports.Messaging
	ts := topics.New(nil)
	d.Topics("rooms", ts)
	mux := http.NewServeMux()
	mux.Handle("/echo", d.Route(&srv, "/echo", realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) }}, &o))
	if o.Observer != nil || o.Name != "" {
		t.Fatal("Route changed the caller's options")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDebug(ctx, "127.0.0.1:0", &srv, mux, d, func(u string) { urls <- u }) }()
	debug, base := <-debugURLs, <-urls
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := rtclient.Dial(dctx, base+"echo", &rtclient.Options{Transports: []realtime.Kind{realtime.SSE}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(1000, "")
	c.SendText(dctx, "hi")
	if _, err := c.Receive(dctx); err != nil {
		t.Fatal(err)
	}

	code, body := get(t, debug+"metrics")
	for _, want := range []string{
		`rtkit_connections{route="/echo",transport="sse"} 1`,
		`rtkit_messages_received_total{route="/echo",transport="sse"} 1`,
		"go_goroutines ",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q: %d\n%s", want, code, body)
		}
	}
	code, body = get(t, debug+"debug/rtkit/snapshot.json")
	var s inspect.Snapshot
	if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil || len(s.Routes) != 1 || s.Routes[0].ByTransport["sse"] != 1 || len(s.Topics) != 1 {
		t.Fatalf("snapshot: %d %v %s", code, err, body)
	}
	if code, _ := get(t, base+"metrics"); code != 404 {
		t.Fatalf("/metrics on the public address: %d", code)
	}
}

// Off (no address, or nil), Debug only makes the routes.
func TestDebugOff(t *testing.T) {
	var srv realtime.Server
	o := transports.Messaging
	for _, d := range []*Debug{nil, {}} {
		if rt := d.Route(&srv, "/x", realtime.Funcs{}, &o); rt == nil {
			t.Fatal("no route")
		}
		d.Topics("t", topics.New(nil))
		if d.Registry() != nil {
			t.Fatal("a registry while off")
		}
	}
}
