// Command progress runs long jobs that report their progress to the page
// that started them, over SSE (the transports.Progress preset: SSE first,
// then long-polling, then WebSocket).
//
// The page sends {"start": N}; the server starts the job in its registry,
// under a random id, and sends
//
//	{"job": "<id>", "of": N}
//	{"step": 1, "of": N, "percent": 2}
//	...
//	{"done": true, "steps": N}
//
// A job belongs to the server, not to the connection that started it. The
// page keeps the job's id in sessionStorage, and on load it sends
// {"resume": "<id>", "after": 0}: the server sends the new connection the
// steps from the job's log, then the new ones as they come, so a reload
// mid-job shows every step exactly once. (A page that opens a new
// connection after a drop resumes after the last step it showed; a dropped
// SSE or long-poll stream that resumes its session misses nothing.)
//
// When the last page watching a job goes (a closed tab: the browser client
// ends its SSE or long-poll session on pagehide, and the browser closes a
// WebSocket), the job runs on for -grace, in case a reload comes back, then
// it is cancelled. Jobs still running when the server shuts down are
// cancelled too.
//
//	go run ./examples/progress                # open http://localhost:8080/
//	go run ./examples/progress -step 50ms -grace 5s -addr localhost:9000
//
// With -debug-addr localhost:9090 it also serves Prometheus metrics at
// /metrics and the inspector at /debug/rtkit/ on that address.
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
	grace := flag.Duration("grace", 2*time.Second, "how long a job goes on once no page watches it")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("progress", func(ctx context.Context, ready func(string)) error {
		return runDebug(ctx, *addr, newJobs(*step, *grace), debug, ready)
	})
}

// routeOptions are the options of /jobs: transports.Progress, with sends
// that wait for room (OverflowBlock), so that a connection's follower
// sends a job's step log at the pace its client reads.
func routeOptions() realtime.Options {
	o := transports.Progress
	o.Overflow = realtime.OverflowBlock
	return o
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /jobs, whose jobs js runs.
func newMux(srv *realtime.Server, js *jobs) (*http.ServeMux, *realtime.Route) {
	return debugMux(srv, js, nil)
}

// debugMux is newMux with /jobs observed and inspected by d (nil: not).
func debugMux(srv *realtime.Server, js *jobs, d *serve.Debug) (*http.ServeMux, *realtime.Route) {
	o := routeOptions()
	route := d.Route(srv, "/jobs", js.handler(), &o)
	mux := http.NewServeMux()
	mux.Handle("/jobs", route)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux, route
}

// run serves until ctx ends, then closes every connection with "going
// away", waits for the handlers (at most five seconds) and cancels the jobs
// still running.
func run(ctx context.Context, addr string, js *jobs, ready func(url string)) error {
	return runDebug(ctx, addr, js, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, js *jobs, d *serve.Debug, ready func(url string)) error {
	defer js.close()
	var rt realtime.Server
	mux, _ := debugMux(&rt, js, d)
	return serve.RunDebug(ctx, addr, &rt, mux, d, ready)
}
