// Command api serves a JSON calculator over plain HTTP with the same
// handler type as the realtime examples: the route uses the
// transports.RequestResponse preset, so each POST runs the handler's Open,
// Message (the request body) and Close, and the response is what the
// handler sent (see transports/PROTOCOL.md, "Request/response").
//
//	curl -d '{"op":"div","a":1,"b":4}' http://localhost:8080/calc   → {"result":0.25}
//	curl -d '{"op":' http://localhost:8080/calc                     → 400 {"error":"malformed JSON ...","code":4400}
//	curl -X PUT http://localhost:8080/calc                          → 405
//
// A malformed body is told apart with errors.Is(err, realtime.ErrMalformed)
// on what Message.Decode returned; the handler then closes with an
// application code (4400), which the transport answers with 400 and
// {"error", "code"}. The page at / calls the API with fetch.
//
//	go run ./examples/api                # open http://localhost:8080/
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("api", func(ctx context.Context, ready func(string)) error { return runDebug(ctx, *addr, debug, ready) })
}

// newMux returns the example's routes, owned by srv: the page and /calc.
func newMux(srv *realtime.Server) *http.ServeMux { return debugMux(srv, nil) }

// debugMux is newMux with /calc observed and inspected by d (nil: not).
func debugMux(srv *realtime.Server, d *serve.Debug) *http.ServeMux {
	o := transports.RequestResponse
	mux := http.NewServeMux()
	mux.Handle("/calc", d.Route(srv, "/calc", calculator, &o))
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves until ctx ends, then lets running requests finish, at most
// five seconds.
func run(ctx context.Context, addr string, ready func(url string)) error {
	return runDebug(ctx, addr, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, d *serve.Debug, ready func(url string)) error {
	var rt realtime.Server
	return serve.RunDebug(ctx, addr, &rt, debugMux(&rt, d), d, ready)
}
