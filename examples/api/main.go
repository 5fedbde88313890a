// Command api serves a JSON calculator over plain HTTP with the same
// handler type as the realtime examples: the route uses the
// realtime.RequestResponse preset, so each POST runs the handler's Open,
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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtkit/rtkit/realtime"
	_ "github.com/rtkit/rtkit/transports/longpoll" // registers request/response (realtime.HTTP)
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, func(url string) { fmt.Println("api: open", url) }); err != nil {
		slog.Error("api", "err", err)
		os.Exit(1)
	}
}

// newMux returns the example's routes, owned by srv: the page and /calc.
func newMux(srv *realtime.Server) *http.ServeMux {
	o := realtime.RequestResponse
	mux := http.NewServeMux()
	mux.Handle("/calc", srv.Route(calculator, &o))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}

// run serves until ctx ends, then lets running requests finish, at most
// five seconds.
func run(ctx context.Context, addr string, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var rt realtime.Server
	hs := &http.Server{Handler: newMux(&rt), ReadHeaderTimeout: 10 * time.Second}
	host := addr
	if _, port, _ := net.SplitHostPort(addr); port == "0" || port == "" {
		host = ln.Addr().String()
	}
	ready("http://" + host + "/")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(rt.Shutdown(sctx), hs.Shutdown(sctx))
	<-errc
	return err
}
