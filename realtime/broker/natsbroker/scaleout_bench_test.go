package natsbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// scaleNode is one node of a scale-out benchmark: its own connection to
// the server, broker, Topics and route.
type scaleNode struct {
	ts *topics.Topics
	rt *realtime.Route
}

func scaleNodes(b *testing.B, ns *natsServer, n int) []*scaleNode {
	var out []*scaleNode
	for range n {
		br, _ := newBroker(b, ns, nil)
		ts := topics.New(br)
		rt := realtime.NewRoute(roomHandler(ts), &realtime.Options{Transports: inMemory.Transports, MaxConnsPerClient: -1, SendQueue: 1024,
			Logger: slog.New(slog.DiscardHandler)})
		b.Cleanup(func() { rt.Shutdown(context.Background()) })
		out = append(out, &scaleNode{ts: ts, rt: rt})
	}
	return out
}

// subscribe dials a connection to node's route that follows topic.
func (n *scaleNode) subscribe(b *testing.B, topic string) *realtimetest.Client {
	c, err := realtimetest.DialRoute(n.rt, nil)
	if err != nil {
		b.Fatal(err)
	}
	c.SendText(topic + " 0")
	return c
}

// BenchmarkCrossNode publishes from node 0, one message in flight, to a
// subscriber on each of 1, 3 and 5 nodes, and reports the delivery
// latency p50/p99 over all of them (with 1 node: local delivery through
// the server).
//
//	go test -run '^$' -bench CrossNode -benchtime 2000x ./realtime/broker/natsbroker/
func BenchmarkCrossNode(b *testing.B) {
	for _, n := range []int{1, 3, 5} {
		b.Run(fmt.Sprint(n, "nodes"), func(b *testing.B) {
			ns := startServer(b)
			nodes := scaleNodes(b, ns, n)
			var subs []*realtimetest.Client
			for _, nd := range nodes {
				subs = append(subs, nd.subscribe(b, "lat"))
			}
			// Warm up: every subscriber is live once it got a message.
			if _, err := nodes[0].ts.Publish(context.Background(), "lat", realtime.Text("0")); err != nil {
				b.Fatal(err)
			}
			for _, c := range subs {
				envOf(b, c)
			}
			lat := make([]time.Duration, 0, b.N*n)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := nodes[0].ts.Publish(context.Background(), "lat", realtime.Text(strconv.FormatInt(start.UnixNano(), 10))); err != nil {
					b.Fatal(err)
				}
				for _, c := range subs {
					env := envOf(b, c)
					ns, _ := strconv.ParseInt(*env.Data, 10, 64)
					lat = append(lat, time.Since(time.Unix(0, ns)))
				}
			}
			report(b, lat)
		})
	}
}

// BenchmarkFanOut has 10,000 subscribers of one topic spread over 1 or 3
// nodes, publishes 50 messages from node 0 as fast as the broker takes
// them, and reports the deliveries per second until every subscriber got
// all of them.
//
//	go test -run '^$' -bench FanOut -benchtime 1x ./realtime/broker/natsbroker/
func BenchmarkFanOut(b *testing.B) {
	const subscribers, messages = 10000, 50
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprint(n, "nodes"), func(b *testing.B) {
			ns := startServer(b)
			nodes := scaleNodes(b, ns, n)
			var subs []*realtimetest.Client
			for i := range subscribers {
				subs = append(subs, nodes[i%n].subscribe(b, "fan"))
			}
			// Every subscriber is live once it got the warm-up message.
			if _, err := nodes[0].ts.Publish(context.Background(), "fan", realtime.Text("warm")); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, c := range subs {
				wg.Add(1)
				go func() { defer wg.Done(); envOf(b, c) }()
			}
			wg.Wait()
			var elapsed time.Duration
			for range b.N {
				start := time.Now()
				var wg sync.WaitGroup
				for _, c := range subs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range messages {
							var env struct{ Seq uint64 }
							m, err := c.Receive(context.Background())
							if err != nil || json.Unmarshal(m.Data, &env) != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				for i := range messages {
					if _, err := nodes[0].ts.Publish(context.Background(), "fan", realtime.Text(fmt.Sprint(i))); err != nil {
						b.Fatal(err)
					}
				}
				wg.Wait()
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(subscribers*messages*b.N)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/50msgs")
		})
	}
}
