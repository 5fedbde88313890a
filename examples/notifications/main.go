// Command notifications shows server push: every connection receives a
// typed JSON event every few seconds,
//
//	{"type":"notification","id":1,"title":"Build passed","time":"..."}
//
// sent by a ticker started with Conn.Every in the handler's Open. The
// handler has no Close: the ticker stops by itself with the connection.
// The route prefers SSE (the Dashboard preset: SSE, then WebSocket, then
// long-polling), and the page at / shows which transport it landed on.
//
//	go run ./examples/notifications                # open http://localhost:8080/
//	go run ./examples/notifications -every 1s -addr localhost:9000
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	every := flag.Duration("every", defaultEvery, "time between two notifications")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("notifications", func(ctx context.Context, ready func(string)) error { return runDebug(ctx, *addr, *every, debug, ready) })
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /notifications.
func newMux(srv *realtime.Server, every time.Duration) *http.ServeMux {
	return debugMux(srv, every, nil)
}

// debugMux is newMux with /notifications observed and inspected by d
// (nil: not).
func debugMux(srv *realtime.Server, every time.Duration, d *serve.Debug) *http.ServeMux {
	o := transports.Dashboard // SSE first; copy the preset before changing it
	mux := http.NewServeMux()
	mux.Handle("/notifications", d.Route(srv, "/notifications", newNotifier(every, time.Now), &o))
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
func run(ctx context.Context, addr string, every time.Duration, ready func(url string)) error {
	return runDebug(ctx, addr, every, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, every time.Duration, d *serve.Debug, ready func(url string)) error {
	var rt realtime.Server
	return serve.RunDebug(ctx, addr, &rt, debugMux(&rt, every, d), d, ready)
}
