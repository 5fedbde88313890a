// Command chat is a chat with rooms: names come from the auth middleware's
// token (401 without one), joining a room replays its history, members see
// who comes and goes, and the page works over WebSocket, SSE or
// long-polling, whichever gets through.
//
//	go run ./examples/chat                                   # one process, in-memory broker
//	go run ./examples/chat -addr :8081 -broker nats://127.0.0.1:4222
//	RTKIT_BROKER=redis://127.0.0.1:6379 go run ./examples/chat -addr :8082
//
// Started twice on one NATS or Redis server with the same CHAT_SECRET (the
// key that signs sign-in tokens), the two processes are one chat: rooms, history and presence are shared, and SSE POST-backs and
// long-polls that reach the other process are forwarded, so a load
// balancer needs no sticky sessions.
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
	brokerURL := flag.String("broker", os.Getenv("RTKIT_BROKER"), "memory (default), nats://host:port or redis://host:port; also $RTKIT_BROKER")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *brokerURL, func(url string) { fmt.Println("chat: open", url) }); err != nil {
		slog.Error("chat", "err", err)
		os.Exit(1)
	}
}

// run serves the chat until ctx ends, then closes every connection with
// "going away" and waits for the handlers, at most five seconds.
func run(ctx context.Context, addr, brokerURL string, ready func(url string)) error {
	broker, closeBroker, err := openBroker(brokerURL)
	if err != nil {
		return err
	}
	defer closeBroker()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var rt realtime.Server
	hs := &http.Server{Handler: newMux(&rt, broker, newAuth(os.Getenv("CHAT_SECRET"))), ReadHeaderTimeout: 10 * time.Second}
	host := addr
	if h, port, _ := net.SplitHostPort(addr); port == "0" || h == "" {
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

// newMux returns the chat's routes.
func newMux(srv *realtime.Server, broker realtime.Broker, a *auth) *http.ServeMux {
	o := realtime.Messaging // WebSocket, then SSE, then long-polling
	o.Identity = identity   // a session token works only for its user
	if relay, ok := broker.(realtime.Relay); ok {
		o.Relay = relay
	}
	mux := http.NewServeMux()
	mux.Handle("/chat", a.middleware(srv.Route(newChat(realtime.NewTopics(broker)), &o)))
	mux.HandleFunc("POST /login", a.login)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}
