package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/inspect"
	"github.com/rtkit/rtkit/realtime/rtprom"
	"github.com/rtkit/rtkit/realtime/topics"
)

// Debug is an example's operator side: Prometheus metrics at /metrics and
// the inspector at /debug/rtkit/, served on an address of their own
// (-debug-addr) so that the public one never exposes them. A nil *Debug,
// or one with no Addr, serves nothing and observes nothing: the routes
// run as they would without it.
type Debug struct {
	// Addr is the address to serve on; empty means off.
	Addr string
	// Ready, when set, is called with the debug server's URL once it
	// listens. Nil prints it.
	Ready func(url string)

	once     sync.Once
	registry *prometheus.Registry
	observer *rtprom.Observer
	err      error

	mu     sync.Mutex
	routes []inspect.Route
	topics []inspect.Topics
}

// DebugFlag defines -debug-addr on flag.CommandLine and returns the Debug
// it configures.
func DebugFlag() *Debug {
	d := new(Debug)
	flag.StringVar(&d.Addr, "debug-addr", "", "serve Prometheus /metrics and the inspector /debug/rtkit/ on this address (off when empty; keep it private)")
	return d
}

func (d *Debug) on() bool { return d != nil && d.Addr != "" }

// init makes the registry (with the Go and process collectors) and the
// observer, once.
func (d *Debug) init() error {
	d.once.Do(func() {
		d.registry = prometheus.NewRegistry()
		d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		d.observer, d.err = rtprom.New(d.registry, nil)
	})
	return d.err
}

// Route returns srv.Route(h, o), the route named name (its pattern) in
// metrics and shown in the inspector when d is on. o is not modified.
func (d *Debug) Route(srv *realtime.Server, name string, h realtime.Handler, o *realtime.Options) *realtime.Route {
	if !d.on() || d.init() != nil {
		return srv.Route(h, o)
	}
	var oo realtime.Options
	if o != nil {
		oo = *o
	}
	oo.Name = name
	oo.Observer = d.observer
	rt := srv.Route(h, &oo)
	d.mu.Lock()
	d.routes = append(d.routes, inspect.Route{Name: name, Route: rt})
	d.mu.Unlock()
	return rt
}

// Topics shows ts in the inspector under name when d is on.
func (d *Debug) Topics(name string, ts *topics.Topics) {
	if !d.on() {
		return
	}
	d.mu.Lock()
	d.topics = append(d.topics, inspect.Topics{Name: name, Topics: ts})
	d.mu.Unlock()
}

// Registry returns the registry /metrics serves, nil when d is off.
func (d *Debug) Registry() *prometheus.Registry {
	if !d.on() || d.init() != nil {
		return nil
	}
	return d.registry
}

// handler returns the debug mux and the inspector it mounts, for the
// routes and topics given so far.
func (d *Debug) handler() (http.Handler, *inspect.Handler) {
	d.mu.Lock()
	insp := inspect.New(&inspect.Options{Routes: d.routes, Topics: d.topics})
	d.mu.Unlock()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	mux.Handle("/debug/rtkit/", insp)
	mux.Handle("GET /{$}", http.RedirectHandler("/debug/rtkit/", http.StatusFound))
	return mux, insp
}

// serve listens on d.Addr and serves the debug endpoints until ctx ends;
// it calls started once listening (or failed). It is a no-op when d is
// off.
func (d *Debug) serve(ctx context.Context, started func(error)) error {
	if !d.on() {
		started(nil)
		return nil
	}
	if err := d.init(); err != nil {
		started(err)
		return err
	}
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		started(err)
		return err
	}
	h, insp := d.handler()
	hs := HTTPServer(h)
	url := baseURL(d.Addr, ln.Addr())
	if d.Ready != nil {
		d.Ready(url)
	} else {
		fmt.Println("debug: metrics at", url+"metrics", "and the inspector at", url+"debug/rtkit/")
	}
	started(nil)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err = errors.Join(insp.Shutdown(sctx), hs.Shutdown(sctx))
	<-errc
	return err
}

// RunDebug is Run with the debug endpoints of d served beside h, on
// d.Addr, for as long as h is (nil or an off d: Run).
func RunDebug(ctx context.Context, addr string, srv *realtime.Server, h http.Handler, d *Debug, ready func(url string)) error {
	if !d.on() {
		return Run(ctx, addr, srv, h, ready)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan error, 1)
	debugDone := make(chan error, 1)
	go func() { debugDone <- d.serve(ctx, func(err error) { started <- err }) }()
	if err := <-started; err != nil {
		<-debugDone
		return err
	}
	err := Run(ctx, addr, srv, h, ready)
	cancel()
	if derr := <-debugDone; derr != nil && !errors.Is(derr, http.ErrServerClosed) {
		err = errors.Join(err, derr)
	}
	return err
}
