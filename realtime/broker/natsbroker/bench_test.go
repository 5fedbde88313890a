package natsbroker_test

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// BenchmarkPublishToSubscriber measures the latency from Publish on node A
// to delivery on node B over the embedded server, one message at a time:
// "broker" to B's Broker subscription, "topics" from A's Topics.Publish to
// a connection of B's Topics. It reports p50 and p99 in microseconds.
func BenchmarkPublishToSubscriber(b *testing.B) {
	b.Run("broker", func(b *testing.B) {
		ns := startServer(b)
		ba, _ := newBroker(b, ns, nil)
		bb, _ := newBroker(b, ns, nil)
		got := make(chan time.Duration, 1)
		sub, err := bb.Subscribe(context.Background(), "bench", func(e topics.Entry) {
			got <- time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(e.Data))))
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		buf := make([]byte, 8)
		b.ResetTimer()
		for range b.N {
			binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
			if _, err := ba.Publish(ctx, "bench", realtime.Binary(buf)); err != nil {
				b.Fatal(err)
			}
			select {
			case d := <-got:
				lat = append(lat, d)
			case <-time.After(10 * time.Second):
				b.Fatal("no delivery")
			}
		}
		report(b, lat)
	})
	b.Run("topics", func(b *testing.B) {
		ns := startServer(b)
		ba, _ := newBroker(b, ns, nil)
		bb, _ := newBroker(b, ns, nil)
		tsA, tsB := topics.New(ba), topics.New(bb)
		rt := realtime.NewRoute(roomHandler(tsB), inMemory)
		defer rt.Shutdown(context.Background())
		c, _ := realtimetest.DialRoute(rt, nil)
		c.SendText("bench 0")
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := tsA.Publish(ctx, "bench", realtime.Text(strconv.FormatInt(start.UnixNano(), 10))); err != nil {
				b.Fatal(err)
			}
			env := envOf(b, c)
			ns, _ := strconv.ParseInt(*env.Data, 10, 64)
			lat = append(lat, time.Since(time.Unix(0, ns)))
		}
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
