// Package serve is what every example's main does the same way: listen,
// print the URL, serve until SIGINT or SIGTERM, then close every realtime
// connection with "going away" and shut the HTTP server down.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// ShutdownTimeout bounds how long Run waits for handlers and requests to
// finish once its context ends.
const ShutdownTimeout = 5 * time.Second

// The timeouts of the examples' http.Server, as the README's "Production"
// section advises. There is no WriteTimeout: rtkit's transports bound
// each write themselves (realtime.Options.WriteTimeout) and lift the
// server's as they write, but a server-wide one would cut any other
// streaming response.
const (
	// ReadHeaderTimeout bounds reading a request's headers. Without it a
	// client that trickles them (a slow upgrade request, which rtkit
	// never sees) holds a connection and a goroutine for ever.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, its body included.
	// net/http lifts it once the body is read, so SSE streams, held
	// long-polls and upgraded WebSockets live on.
	ReadTimeout = 30 * time.Second
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request. Zero would mean ReadTimeout.
	IdleTimeout = 2 * time.Minute
)

// HTTPServer returns the http.Server that Run serves h with: the
// timeouts above, nothing else.
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
	}
}

// Main calls run with a context that SIGINT or SIGTERM cancels and a ready
// function that prints "name: open URL"; if run fails, it logs the error
// and exits with status 1.
func Main(name string, run func(ctx context.Context, ready func(url string)) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, func(url string) { fmt.Println(name+": open", url) }); err != nil {
		stop()
		slog.Error(name, "err", err)
		os.Exit(1)
	}
}

// Run listens on addr, calls ready with the server's URL, and serves h
// with HTTPServer until ctx ends. Then it closes every connection of
// srv's routes with "going away" (http.Server.Shutdown does not close
// hijacked WebSockets or wait for streams) and shuts the HTTP server
// down, waiting at most ShutdownTimeout for both.
func Run(ctx context.Context, addr string, srv *realtime.Server, h http.Handler, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := HTTPServer(h)
	ready(baseURL(addr, ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop taking connections first: the clients that the realtime
	// shutdown tells to go away reconnect at once, and a connection they
	// open meanwhile, with no request read yet, would hold the HTTP
	// shutdown (net/http waits five seconds for those).
	ln.Close()
	<-errc
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return errors.Join(srv.Shutdown(sctx), hs.Shutdown(sctx))
}

// baseURL is the URL to print for a server asked to listen on addr and
// listening on bound: the asked host name (such as localhost), the bound
// port (an asked port 0 picks one), and localhost for a wildcard address.
func baseURL(addr string, bound net.Addr) string {
	host, port, _ := net.SplitHostPort(bound.String())
	if h, _, _ := net.SplitHostPort(addr); h != "" {
		host = h
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Page serves an example's HTML page.
func Page(html []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(html)
	}
}
