// Command agent is the scenario rtkit was born from: a message arrives, the
// handler calls an AI agent that takes seconds to minutes, and the answer
// streams back token by token. A deterministic stand-in model plays the
// agent (no network): it thinks for -first-token, then sends a word every
// -token-delay.
//
//	go run ./examples/agent                  # open http://localhost:8080/
//	go run ./examples/agent -first-token 5s -token-delay 200ms -grace 10s
//
// Answers live with the conversation, not the connection. The page gets a
// conversation id from the server and keeps it in sessionStorage; each
// conversation is a topic ("conv:<id>") that keeps its history, and an
// answer runs in a server-level registry that publishes start, each token
// and end on that topic. So a reload, or a reconnect on another transport,
// re-attaches to the answer in flight and rebuilds the transcript from the
// history; Stop cancels the model at once; and an answer that nobody has
// watched for -grace (the tab was closed) is abandoned, which cancels the
// model too. The page works over WebSocket, SSE or long-polling
// (?transport=sse forces one).
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
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports"
)

//go:embed index.html
var page []byte

// settings are the example's flags.
type settings struct {
	firstToken time.Duration // the model's delay before its first token
	tokenDelay time.Duration // between tokens
	grace      time.Duration // how long an answer nobody watches goes on
}

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	var s settings
	flag.DurationVar(&s.firstToken, "first-token", 1500*time.Millisecond, "how long the model thinks before its first token")
	flag.DurationVar(&s.tokenDelay, "token-delay", 60*time.Millisecond, "how long the model takes per further token")
	flag.DurationVar(&s.grace, "grace", 3*time.Second, "how long an answer goes on once nobody watches its conversation")
	debug := serve.DebugFlag()
	flag.Parse()
	serve.Main("agent", func(ctx context.Context, ready func(string)) error {
		return runDebug(ctx, *addr, newApp(s), transports.Messaging, debug, ready)
	})
}

// history is how many events a conversation's topic keeps: enough for the
// transcript of many long answers, replayed on every reload.
const history = 10000

// app is the example's server side: the topics the conversations live on,
// the model and the registry that runs answers.
type app struct {
	broker *topics.MemoryBroker
	agent  *agent
	model  *model
	convs  *conversations
	route  *realtime.Route // set by mux
}

func newApp(s settings) *app {
	broker := topics.NewMemoryBroker(&topics.MemoryOptions{History: history})
	ts := topics.New(broker)
	m := &model{firstToken: s.firstToken, tokenDelay: s.tokenDelay}
	convs := newConversations(ts, m, s.grace)
	return &app{broker: broker, agent: &agent{topics: ts, convs: convs}, model: m, convs: convs}
}

// close stops the answers still running, then the broker. Call it after the
// realtime server has shut down.
func (a *app) close() {
	a.convs.close()
	a.broker.Close()
}

// mux returns the example's routes, owned by srv: the page, the browser
// client and /agent with options o.
func (a *app) mux(srv *realtime.Server, o realtime.Options) *http.ServeMux {
	return a.debugMux(srv, o, nil)
}

// debugMux is mux with /agent and the conversations' topics observed and
// inspected by d (nil: not).
func (a *app) debugMux(srv *realtime.Server, o realtime.Options, d *serve.Debug) *http.ServeMux {
	mux := http.NewServeMux()
	d.Topics("conversations", a.agent.topics)
	a.route = d.Route(srv, "/agent", a.agent.handler(), &o)
	mux.Handle("/agent", a.route)
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("GET /{$}", serve.Page(page))
	return mux
}

// run serves a until ctx ends, then closes every connection with "going
// away", waits for the handlers (at most five seconds) and stops the answers
// still running. o is the route's options: transports.Messaging, WebSocket
// first, then SSE and long-polling.
func run(ctx context.Context, addr string, a *app, o realtime.Options, ready func(url string)) error {
	return runDebug(ctx, addr, a, o, nil, ready)
}

// runDebug is run with the metrics and inspector of d (nil: none).
func runDebug(ctx context.Context, addr string, a *app, o realtime.Options, d *serve.Debug, ready func(url string)) error {
	defer a.close()
	var srv realtime.Server
	return serve.RunDebug(ctx, addr, &srv, a.debugMux(&srv, o, d), d, ready)
}
