// Command echo is the seed's first example: an echo agent with a heartbeat
// every five seconds, served at /echo over WebSocket, SSE, long-polling and
// request/response, with a page at / to try each.
//
//	go run ./examples/echo -addr localhost:8080
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
	"github.com/rtkit/rtkit/realtime/rtjs"
	_ "github.com/rtkit/rtkit/transports/longpoll"
	_ "github.com/rtkit/rtkit/transports/sse"
	_ "github.com/rtkit/rtkit/transports/websocket"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, func(url string) { fmt.Println("echo: open", url) }); err != nil {
		slog.Error("echo", "err", err)
		os.Exit(1)
	}
}

// options serves /echo over every transport; the page picks one.
var options = realtime.Options{
	Transports: []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll, realtime.HTTP},
}

// newMux returns the example's routes, owned by srv.
func newMux(srv *realtime.Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/echo", srv.Route(newEcho(echoAgent), &options))
	mux.Handle(rtjs.Path, rtjs.Handler()) // the browser client, for the page's last choice
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
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
