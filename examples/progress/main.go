// Command progress runs long jobs that report their progress to the page
// that started them, over SSE (the transports.Progress preset: SSE first,
// then long-polling, then WebSocket, with a deep resume buffer).
//
// The page sends {"start": N}; the handler runs the job with Conn.Go, so
// the job is cancelled with the connection's context, and sends
//
//	{"step": 1, "of": N, "percent": 2}
//	...
//	{"done": true, "steps": N}
//
// If the stream drops mid-job (a flaky network, a laptop lid), the client
// resumes its session and the server replays the steps it missed: none is
// lost or repeated. If the page goes away for good, the job stops.
//
//	go run ./examples/progress                # open http://localhost:8080/
//	go run ./examples/progress -step 50ms -addr localhost:9000
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
	step := flag.Duration("step", 200*time.Millisecond, "how long one step of a job takes")
	flag.Parse()
	serve.Main("progress", func(ctx context.Context, ready func(string)) error { return run(ctx, *addr, *step, ready) })
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /jobs.
func newMux(srv *realtime.Server, step time.Duration) *http.ServeMux {
	o := transports.Progress
	j := &jobs{clock: wallClock{}, step: step}
	mux := http.NewServeMux()
	mux.Handle("/jobs", srv.Route(j.handler(), &o))
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// (which cancels running jobs) and waits for the handlers, at most five
// seconds.
func run(ctx context.Context, addr string, step time.Duration, ready func(url string)) error {
	var rt realtime.Server
	return serve.Run(ctx, addr, &rt, newMux(&rt, step), ready)
}
