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
//
// # Metrics and inspection
//
// With -debug-addr the chat serves, on that address only (keep it
// private), Prometheus metrics at /metrics and the inspector at
// /debug/rtkit/, a live page of its connections and rooms:
//
//	go run ./examples/chat -debug-addr localhost:9090
//
// A Prometheus scrape configuration for it (prometheus.yml):
//
//	scrape_configs:
//	  - job_name: rtkit-chat
//	    scrape_interval: 15s
//	    static_configs:
//	      - targets: ["localhost:9090"]   # the -debug-addr of each process
//
// Then, for instance, live connections by transport and messages per
// second:
//
//	sum by (transport) (rtkit_connections{route="/chat"})
//	rate(rtkit_messages_received_total{route="/chat"}[1m])
//	sum by (code) (rate(rtkit_connections_closed_total{route="/chat"}[5m]))
package main

import (
	"context"
	_ "embed"
	"flag"
	"net/http"
	"os"
	"time"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	brokerURL := flag.String("broker", os.Getenv("RTKIT_BROKER"), "memory (default), nats://host:port or redis://host:port; also $RTKIT_BROKER")
	debug := serve.DebugFlag()
	flag.IntVar(&tuning.history, "history", 0, "messages kept per room (0: the broker's default, 1024)")
	flag.DurationVar(&tuning.presenceTTL, "presence-ttl", 0, "how long a crashed node's members stay before the other nodes announce their leave (0: the broker's default)")
	flag.DurationVar(&tuning.resumeWindow, "resume-window", 0, "how long a dropped SSE or long-poll session waits for its client (0: 30s)")
	flag.DurationVar(&tuning.pingInterval, "ping-interval", 0, "how often idle peers are pinged, and how long they have to answer (0: 25s and 10s)")
	flag.Parse()
	serve.Main("chat", func(ctx context.Context, ready func(string)) error {
		return runDebug(ctx, *addr, *brokerURL, debug, ready)
	})
}

// tuning is what the -history, -presence-ttl, -resume-window and
// -ping-interval flags set;
// the zero value means the defaults.
var tuning settings

type settings struct {
	history      int
	presenceTTL  time.Duration
	resumeWindow time.Duration
	pingInterval time.Duration
}

// run serves the chat until ctx ends, then closes every connection with
// "going away" and waits for the handlers, at most five seconds.
func run(ctx context.Context, addr, brokerURL string, ready func(url string)) error {
	return runDebug(ctx, addr, brokerURL, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr, brokerURL string, d *serve.Debug, ready func(url string)) error {
	broker, closeBroker, err := openBroker(brokerURL, tuning)
	if err != nil {
		return err
	}
	defer closeBroker()
	var rt realtime.Server
	return serve.RunDebug(ctx, addr, &rt, debugMux(&rt, broker, newAuth(os.Getenv("CHAT_SECRET")), d), d, ready)
}

// newMux returns the chat's routes.
func newMux(srv *realtime.Server, broker topics.Broker, a *auth) *http.ServeMux {
	return debugMux(srv, broker, a, nil)
}

// debugMux returns the chat's routes, observed by d and shown in its
// inspector (rooms are the topic set "rooms"); nil d observes nothing.
func debugMux(srv *realtime.Server, broker topics.Broker, a *auth, d *serve.Debug) *http.ServeMux {
	o := transports.Messaging // WebSocket, then SSE, then long-polling
	o.Identity = identity     // a session token works only for its user
	o.ResumeWindow = tuning.resumeWindow
	o.PingInterval, o.PongTimeout = tuning.pingInterval, tuning.pingInterval
	if relay, ok := broker.(realtime.Relay); ok {
		o.Relay = relay
	}
	mux := http.NewServeMux()
	rooms := topics.New(broker)
	d.Topics("rooms", rooms)
	mux.Handle("/chat", a.middleware(d.Route(srv, "/chat", newChat(rooms), &o)))
	mux.HandleFunc("POST /login", a.login)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}
