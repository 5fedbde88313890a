// Command metrics is a live dashboard of the server's own figures: one
// background goroutine samples the process and the host once a second
// (process CPU % from getrusage deltas, Go heap from runtime.MemStats,
// the host's load average from /proc/loadavg) and publishes each sample
// on the topics.Topics topic "metrics". Every dashboard subscribes in
// its handler's Open, replaying the last minute first, so all of them draw
// the same chart; the page draws it in hand-written SVG.
//
// The sampler belongs to run: it starts with the server and stops, before
// the connections close, when the server shuts down.
//
//	go run ./examples/metrics                # open http://localhost:8080/ in a few tabs
//	go run ./examples/metrics -every 250ms -addr localhost:9000
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"
	"sync"
	"time"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	every := flag.Duration("every", time.Second, "time between two samples")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("metrics", func(ctx context.Context, ready func(string)) error { return runDebug(ctx, *addr, *every, debug, ready) })
}

// history is how many samples a new dashboard receives first.
const history = 60

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /metrics, where dashboards subscribe to ts.
func newMux(srv *realtime.Server, ts *topics.Topics) *http.ServeMux { return debugMux(srv, ts, nil) }

// debugMux is newMux with the dashboard route and its topics observed and
// inspected by d (nil: not). d serves Prometheus' /metrics on its own
// address, so the two never meet.
func debugMux(srv *realtime.Server, ts *topics.Topics, d *serve.Debug) *http.ServeMux {
	o := transports.Dashboard // SSE first; the oldest update is dropped for a slow screen
	d.Topics("samples", ts)
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.Route(srv, "/metrics", newDashboard(ts), &o))
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run samples and serves until ctx ends; then it stops the sampler, closes
// every connection with "going away" and waits for the handlers, at most
// five seconds.
func run(ctx context.Context, addr string, every time.Duration, ready func(url string)) error {
	return runDebug(ctx, addr, every, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, every time.Duration, d *serve.Debug, ready func(url string)) error {
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: history}))
	// The one publisher, owned by run: it stops when run returns (ctx
	// ended, or the server failed), and run waits for it.
	pctx, stopPublisher := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopPublisher()
	wg.Go(func() { publish(pctx, ts, every, newSampler()) })
	var rt realtime.Server
	return serve.RunDebug(ctx, addr, &rt, debugMux(&rt, ts, d), d, ready)
}
