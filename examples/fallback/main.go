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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, func(url string) { fmt.Println("fallback: open", url) }); err != nil {
		slog.Error("fallback", "err", err)
		os.Exit(1)
	}
}

// newMux returns the example's routes, owned by srv: the page, the browser
// client and /echo behind the middleware cfg asks for.
func newMux(srv *realtime.Server, cfg config) *http.ServeMux {
	o := realtime.Messaging // WebSocket, then SSE, then long-polling
	var echo http.Handler = srv.Route(newEcho(echoAgent), &o)
	if cfg.bufferStreams {
		echo = bufferStreams(echo)
	}
	if cfg.blockUpgrades {
		echo = blockUpgrades(echo)
	}
	mux := http.NewServeMux()
	mux.Handle("/echo", echo)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}

// run serves until ctx ends, then closes every connection with "going away"
// and waits for the handlers, at most five seconds.
func run(ctx context.Context, cfg config, ready func(url string)) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	var rt realtime.Server
	hs := &http.Server{Handler: newMux(&rt, cfg), ReadHeaderTimeout: 10 * time.Second}
	host := cfg.addr
	if _, port, _ := net.SplitHostPort(cfg.addr); port == "0" || port == "" {
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
