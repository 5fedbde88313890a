package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// The seed's echo agent: reply to each message, and report failures to the
// client instead of dropping them.
func ExampleFuncs() {
	echo := realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return c.SendText("echo: " + m.Text())
		},
		OnClose: func(c *realtime.Conn, err error) {
			fmt.Println("closed with", realtime.CloseStatus(err))
		},
	}
	rec, _ := realtimetest.Run(echo, nil, realtime.Text("hi"), realtime.Text("there"))
	fmt.Println(rec.Texts())
	// Output:
	// closed with 1000
	// [echo: hi echo: there]
}

// Per-connection state lives in the closure, as in the seed's
// (c) => (ws) => {...}; no map keyed by connection, no lock.
func ExamplePerConn() {
	counter := realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		n := 0
		return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			n++
			return c.SendJSON(map[string]any{"n": n, "text": m.Text()})
		}}
	})
	rec, _ := realtimetest.Run(counter, nil, realtime.Text("a"), realtime.Text("b"))
	fmt.Println(rec.Texts())
	// Output: [{"n":1,"text":"a"} {"n":2,"text":"b"}]
}

// A heartbeat that needs no cleanup: the ticker stops with the connection.
// The fake clock runs five seconds of it in microseconds.
func ExampleConn_Every() {
	clock := realtimetest.NewClock(time.Unix(0, 0))
	h := realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		c.Every(5*time.Second, func() { c.SendJSON(map[string]string{"type": "heartbeat"}) })
		return nil
	}}
	c, _ := realtimetest.Dial(h, &realtime.Options{Clock: clock})
	clock.Advance(5 * time.Second)
	s, _ := c.ReceiveText(context.Background())
	fmt.Println(s)
	c.Close(realtime.CloseNormal, "")
	fmt.Println("timers left:", clock.Pending())
	// Output:
	// {"type":"heartbeat"}
	// timers left: 0
}

// A handler chooses the close code the client sees by returning a
// *CloseError; any other error closes with 1011 and is logged.
func ExampleCloseError() {
	h := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		return &realtime.CloseError{Code: 4003, Reason: "forbidden"}
	}}
	rec, _ := realtimetest.Run(h, nil, realtime.Text("rm -rf /"))
	fmt.Println(rec.Code, rec.Reason, realtime.CloseStatus(rec.Err))
	// Output: 4003 forbidden 4003
}

// Mounting on net/http; the options pick the transports, here the
// dashboard preset (SSE first) with one field overridden.
func ExampleNewRoute() {
	o := transports.Dashboard
	o.MaxConns = 10_000
	route := realtime.NewRoute(realtime.Funcs{}, &o)

	mux := http.NewServeMux()
	mux.Handle("/live", route)
	// http.ListenAndServe("localhost:8080", mux)
	fmt.Println(len(o.Transports), "transports")
	// Output: 3 transports
}

// A route's transports are values, each with its own options.
func ExampleNewRoute_transports() {
	route := realtime.NewRoute(realtime.Funcs{}, &realtime.Options{
		Transports: []realtime.Transport{
			websocket.New(websocket.Options{Compression: true}),
			sse.New(sse.Options{}),
		},
	})
	http.Handle("/chat", route)
	for _, t := range []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{})} {
		fmt.Println(t.Kind())
	}
	// Output:
	// websocket
	// sse
}

func ExampleCloseStatus() {
	err := fmt.Errorf("wrapped: %w", &realtime.CloseError{Code: realtime.CloseGoingAway, Err: realtime.ErrServerClosed})
	fmt.Println(realtime.CloseStatus(err), errors.Is(err, realtime.ErrServerClosed))
	// Output: 1001 true
}
