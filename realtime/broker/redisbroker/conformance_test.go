package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
)

// transcript runs the same calls on a broker keeping 4 messages per topic
// and records what it answers, for comparison with the memory broker.
func transcript(t *testing.T, b topics.Broker) []string {
	ctx := tctx(t)
	var out []string
	rec := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	hist := func(topic string, after uint64, limit int) {
		h, err := b.History(ctx, topic, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		rec("history %s after %d limit %d: last %d gap %v entries %s", topic, after, limit, h.Last, h.Gap, entries(h.Entries))
	}
	col := newCollector()
	sub, err := b.Subscribe(ctx, "a", col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	hist("a", 0, 0) // nothing yet
	msgs := []realtime.Message{
		realtime.Text("one"),
		realtime.Binary([]byte{0, 1, 2, 0xff}),
		{Type: topics.PresenceMessage, Data: []byte(`{"presence":"join"}`)},
		realtime.Text(""),
		realtime.Binary(nil),
		realtime.Text("six with spaces and\nnewlines"),
	}
	for i, m := range msgs {
		seq, err := b.Publish(ctx, "a", m)
		if err != nil {
			t.Fatal(err)
		}
		rec("publish a #%d: seq %d", i, seq)
		if i%2 == 0 {
			seq, err := b.Publish(ctx, "b", realtime.Text(fmt.Sprint("b", i)))
			if err != nil {
				t.Fatal(err)
			}
			rec("publish b: seq %d", seq)
		}
	}
	rec("delivered %s", entries(col.wait(t, len(msgs))))
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 1, 2, 3, 5, 6, 7, math.MaxUint64} {
		hist("a", after, 0)
	}
	hist("a", 2, 2)
	hist("a", 0, 1)
	hist("a", 5, 10)
	hist("b", 0, 0)
	hist("b", 2, 1)
	hist("b", math.MaxUint64, 1)
	hist("none", 0, 0)
	return out
}

func entries(es []topics.Entry) string {
	s := "["
	for _, e := range es {
		s += fmt.Sprintf(" %d:%s:%q", e.Seq, e.Type, e.Data)
		if e.Type == topics.PresenceMessage {
			s += "(presence)"
		}
	}
	return s + " ]"
}

func TestConformsToMemoryBroker(t *testing.T) {
	s := startRedis(t)
	mem := topics.NewMemoryBroker(&topics.MemoryOptions{History: 4})
	want := transcript(t, mem)
	got := transcript(t, newBroker(t, s, &redisbroker.Options{History: 4}))
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("redis:  %s\nmemory: %s", g, w)
			}
		}
	}
	t.Logf("%d answers alike", len(want))
	for _, line := range want[:3] {
		t.Log(line)
	}
}

func TestClosedBroker(t *testing.T) {
	s := startRedis(t)
	b := newBroker(t, s, nil)
	b.Close()
	ctx := tctx(t)
	if _, err := b.Publish(ctx, "t", realtime.Text("x")); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Errorf("publish: %v", err)
	}
	if _, err := b.Subscribe(ctx, "t", func(topics.Entry) {}); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Errorf("subscribe: %v", err)
	}
	if _, err := b.History(ctx, "t", 0, 0); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Errorf("history: %v", err)
	}
	if _, err := b.Request(ctx, "n", nil); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Errorf("request: %v", err)
	}
}

// Losing the counter key (an eviction) while the history survives does
// not stop the topic: the numbering continues after the history.
func TestCounterLost(t *testing.T) {
	s := startRedis(t)
	b := newBroker(t, s, &redisbroker.Options{Prefix: "p"})
	ctx := tctx(t)
	for range 3 {
		b.Publish(ctx, "t", realtime.Text("x"))
	}
	if err := s.Client(t).Del(ctx, "p:{t}:seq").Err(); err != nil {
		t.Fatal(err)
	}
	seq, err := b.Publish(ctx, "t", realtime.Text("y"))
	if err != nil || seq != 4 {
		t.Fatalf("publish after losing the counter: %d, %v", seq, err)
	}
	h, _ := b.History(ctx, "t", 0, 0)
	if h.Last != 4 || len(h.Entries) != 4 || h.Entries[3].Seq != 4 {
		t.Fatalf("history %+v", h)
	}
}

// Subscriptions of many topics on one broker each get their own topic,
// in order.
func TestSubscriptionsPerTopic(t *testing.T) {
	s := startRedis(t)
	a, b := newBroker(t, s, nil), newBroker(t, s, nil)
	ctx := context.Background()
	cols := map[string]*collector{}
	for _, topic := range []string{"x", "y", "{z}", "a}b"} {
		cols[topic] = newCollector()
		sub, err := b.Subscribe(ctx, topic, cols[topic].deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	for i := range 20 {
		for topic := range cols {
			a.Publish(ctx, topic, realtime.Text(topic+fmt.Sprint(i)))
		}
	}
	for topic, c := range cols {
		for i, e := range c.wait(t, 20) {
			if e.Seq != uint64(i+1) || string(e.Data) != topic+fmt.Sprint(i) {
				t.Fatalf("%s: entry %d is %d %q", topic, i, e.Seq, e.Data)
			}
		}
	}
}
