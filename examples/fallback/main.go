// Command fallback shows the client's transport fallback. The page has
// buttons that force WebSocket, SSE or long-polling (the client's
// transports option) or leave the choice to the client, and a line that
// says which transport is live; the route (/echo) echoes what it is sent
// and sends a heartbeat every five seconds.
//
// Two flags put a misbehaving proxy in front of the route, so that the
// client lands on another transport by itself:
//
//	go run ./examples/fallback                                  # WebSocket
//	go run ./examples/fallback -block-upgrades                  # upgrades refused (403): SSE
//	go run ./examples/fallback -block-upgrades -buffer-streams  # streams buffered too: long-polling
//
// -buffer-streams alone leaves WebSocket working, so "auto" stays on it;
// the SSE button then shows the stream failing over to long-polling.
// Open http://localhost:8080/ and watch the transport line.
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

// config is what the flags set.
type config struct {
	addr          string
	blockUpgrades bool // refuse WebSocket upgrades with 403
	bufferStreams bool // hold SSE responses until they end
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "address to listen on")
	flag.BoolVar(&cfg.blockUpgrades, "block-upgrades", false, "refuse WebSocket upgrades with 403, as some proxies do")
	flag.BoolVar(&cfg.bufferStreams, "buffer-streams", false, "buffer SSE responses until they end, as some proxies do")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("fallback", func(ctx context.Context, ready func(string)) error { return runDebug(ctx, cfg, debug, ready) })
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /echo behind the middleware cfg asks for.
func newMux(srv *realtime.Server, cfg config) *http.ServeMux { return debugMux(srv, cfg, nil) }

// debugMux is newMux with /echo observed and inspected by d (nil: not):
// its metrics count the transport each client ended up on.
func debugMux(srv *realtime.Server, cfg config, d *serve.Debug) *http.ServeMux {
	o := transports.Messaging // WebSocket, then SSE, then long-polling
	var echo http.Handler = d.Route(srv, "/echo", newEcho(echoAgent), &o)
	if cfg.bufferStreams {
		echo = bufferStreams(echo)
	}
	if cfg.blockUpgrades {
		echo = blockUpgrades(echo)
	}
	mux := http.NewServeMux()
	mux.Handle("/echo", echo)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
func run(ctx context.Context, cfg config, ready func(url string)) error {
	return runDebug(ctx, cfg, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, cfg config, d *serve.Debug, ready func(url string)) error {
	var rt realtime.Server
	return serve.RunDebug(ctx, cfg.addr, &rt, debugMux(&rt, cfg, d), d, ready)
}
