package natsbroker_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Topics on NATS JetStream: what one node publishes is kept in the topic's
// stream and reaches the subscribed connections of every node. The
// example embeds a NATS server; a deployment connects to its NATS system.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dir, err := os.MkdirTemp("", "natsbroker-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, // a free port
		JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		fmt.Println("nats-server did not start")
		return
	}

	// The broker uses the connection but does not own it: close the
	// broker first, then the connection.
	nc, err := nats.Connect(ns.ClientURL(), nats.ReconnectBufSize(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	b, err := natsbroker.New(nc, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	ts := topics.New(b)
	for _, s := range []string{"first", "second"} {
		if _, err := ts.Publish(ctx, "news", realtime.Text(s)); err != nil {
			fmt.Println(err)
			return
		}
	}
	h, err := b.History(ctx, "news", 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range h.Entries {
		fmt.Println(e.Seq, e.Text())
	}

	// A connection that saw seq 1 resumes: the history after it, then
	// the live messages.
	route := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return ts.Resume(c, "news", 1)
	}}, &realtime.Options{Transports: []realtime.Transport{realtimetest.Memory}})
	defer route.Shutdown(ctx)
	c, err := realtimetest.DialRoute(route, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(realtime.CloseNormal, "")
	ts.Publish(ctx, "news", realtime.Text("third"))
	for range 2 {
		s, err := c.ReceiveText(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(s)
	}
	// Output:
	// 1 first
	// 2 second
	// {"topic":"news","seq":2,"data":"second"}
	// {"topic":"news","seq":3,"data":"third"}
}
