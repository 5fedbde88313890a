// Command echo is the seed's first example: an echo agent with a heartbeat
// every five seconds, served at /echo over WebSocket, SSE, long-polling and
// request/response, with a page at / to try each.
//
//	go run ./examples/echo -addr localhost:8080
//
// With -debug-addr localhost:9090 it also serves Prometheus metrics at
// /metrics and the inspector at /debug/rtkit/ on that address.
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("echo", func(ctx context.Context, ready func(string)) error { return runDebug(ctx, *addr, debug, ready) })
}

// options serves /echo over every transport; the page picks one.
var options = realtime.Options{
	Transports: []realtime.Transport{
		websocket.New(websocket.Options{}),
		sse.New(sse.Options{}),
		longpoll.New(longpoll.Options{}),
		longpoll.NewRequestResponse(),
	},
}

// newMux returns the example's routes, owned by srv.
func newMux(srv *realtime.Server) *http.ServeMux { return debugMux(srv, nil) }

// debugMux is newMux with the routes observed and inspected by d (nil:
// not).
func debugMux(srv *realtime.Server, d *serve.Debug) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/echo", d.Route(srv, "/echo", newEcho(echoAgent), &options))
	mux.Handle(rtjs.Path, rtjs.Handler()) // the browser client, for the page's last choice
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
func run(ctx context.Context, addr string, ready func(url string)) error {
	return runDebug(ctx, addr, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, d *serve.Debug, ready func(url string)) error {
	var rt realtime.Server
	return serve.RunDebug(ctx, addr, &rt, debugMux(&rt, d), d, ready)
}
