package redisbroker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// BenchmarkPublishToSubscriber measures the end-to-end latency of one
// message from node A's Publish to the delivery on node B (two clients,
// two brokers, one redis-server), one message at a time, and reports its
// median and 99th percentile.
//
//	go test -run '^$' -bench PublishToSubscriber -benchtime 5000x ./realtime/broker/redisbroker/
func BenchmarkPublishToSubscriber(b *testing.B) {
	s := startRedis(b)
	nodeA, nodeB := newBroker(b, s, nil), newBroker(b, s, nil)
	ctx := context.Background()
	got := make(chan time.Time, 1)
	sub, err := nodeB.Subscribe(ctx, "bench", func(topics.Entry) { got <- time.Now() })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	payload := realtime.Text(`{"user":"ada","text":"hello, world"}`)
	// Warm up both connections.
	for range 100 {
		nodeA.Publish(ctx, "bench", payload)
		<-got
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := nodeA.Publish(ctx, "bench", payload); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	us := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}
