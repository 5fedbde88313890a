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
	every := flag.Duration("every", defaultEvery, "time between two notifications")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *every, func(url string) { fmt.Println("notifications: open", url) }); err != nil {
		slog.Error("notifications", "err", err)
		os.Exit(1)
	}
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /notifications.
func newMux(srv *realtime.Server, every time.Duration) *http.ServeMux {
	o := realtime.Dashboard // SSE first; copy the preset before changing it
	mux := http.NewServeMux()
	mux.Handle("/notifications", srv.Route(newNotifier(every, time.Now), &o))
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
func run(ctx context.Context, addr string, every time.Duration, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var rt realtime.Server
	hs := &http.Server{Handler: newMux(&rt, every), ReadHeaderTimeout: 10 * time.Second}
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
