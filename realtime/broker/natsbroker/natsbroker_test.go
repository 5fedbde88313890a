package natsbroker_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/topics"
)

// topicNames exercise the escaping: subject tokens, wildcards, case,
// the empty name and one too long to be used as is.
var topicNames = []string{"lobby", "a.b", "*", ">", "", "Room", "room", "ünï code/x y", strings.Repeat("long", 100)}

func sameEntries(a, b []topics.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func fmtHistory(h topics.History) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "{gap %v last %d [", h.Gap, h.Last)
	for _, e := range h.Entries {
		fmt.Fprintf(&sb, " %d:%d:%q", e.Seq, e.Type, e.Data)
	}
	sb.WriteString(" ]}")
	return sb.String()
}

// TestConformance runs the same publishes against the memory broker and
// the NATS broker and compares every answer.
func TestConformance(t *testing.T) {
	ns := startServer(t)
	nb, c := newBroker(t, ns, &natsbroker.Options{History: 4})
	mb := topics.NewMemoryBroker(&topics.MemoryOptions{History: 4})
	ctx := tctx(t)
	js, _ := jetstream.New(c.nc)

	// Unknown topics: empty history, Last 0, and no stream created.
	for _, topic := range topicNames {
		for _, after := range []uint64{0, 3, math.MaxUint64} {
			h, err := nb.History(ctx, topic, after, 0)
			if err != nil || h.Last != 0 || h.Gap || len(h.Entries) != 0 {
				t.Fatalf("history of unknown %q: %+v, %v", topic, h, err)
			}
		}
		sub, err := nb.Subscribe(ctx, topic, func(topics.Entry) {})
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
	if n, _ := js.AccountInfo(ctx); n.Streams != 2 { // the topics and the presence bucket
		t.Fatalf("streams after History/Subscribe: %d", n.Streams)
	}

	// Live deliveries, to compare with what Publish returned.
	type got struct {
		topic string
		e     topics.Entry
	}
	live := make(chan got, 1000)
	for _, topic := range topicNames {
		sub, err := nb.Subscribe(ctx, topic, func(e topics.Entry) { live <- got{topic, e} })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}

	types := []realtime.MessageType{realtime.TextMessage, realtime.BinaryMessage, topics.PresenceMessage}
	var want []got
	for i := range 7 {
		for j, topic := range topicNames {
			m := realtime.Message{Type: types[(i+j)%3], Data: []byte(fmt.Sprintf("%s#%d", topic, i))}
			if i == 3 {
				m.Data = nil // empty messages too
			}
			s1, err := nb.Publish(ctx, topic, m)
			if err != nil {
				t.Fatal(err)
			}
			s2, _ := mb.Publish(ctx, topic, m)
			if s1 != s2 || s1 != uint64(i+1) {
				t.Fatalf("publish %d to %q: seq %d, memory broker %d", i, topic, s1, s2)
			}
			want = append(want, got{topic, topics.Entry{Seq: s1, Message: m}})
		}
	}
	// Each topic's live deliveries come in order, with types and data.
	next := map[string]int{}
	byTopic := map[string][]topics.Entry{}
	for _, w := range want {
		byTopic[w.topic] = append(byTopic[w.topic], w.e)
	}
	deadline := time.After(10 * time.Second)
	for range want {
		select {
		case g := <-live:
			w := byTopic[g.topic][next[g.topic]]
			next[g.topic]++
			if !sameEntries([]topics.Entry{g.e}, []topics.Entry{w}) {
				t.Fatalf("live %q: got %d:%d:%q, want %d:%d:%q", g.topic, g.e.Seq, g.e.Type, g.e.Data, w.Seq, w.Type, w.Data)
			}
		case <-deadline:
			t.Fatalf("live deliveries missing: got %v", next)
		}
	}

	// However many topics, two streams.
	if n, _ := js.AccountInfo(ctx); n.Streams != 2 {
		t.Fatalf("streams after publishing to %d topics: %d", len(topicNames), n.Streams)
	}

	// History answers exactly as the memory broker's.
	for _, topic := range topicNames {
		for _, after := range []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 100, math.MaxUint64} {
			for _, limit := range []int{0, -1, 1, 2, 3, 4, 10} {
				hn, err := nb.History(ctx, topic, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				hm, _ := mb.History(ctx, topic, after, limit)
				if hn.Gap != hm.Gap || hn.Last != hm.Last || !sameEntries(hn.Entries, hm.Entries) {
					t.Fatalf("History(%q, %d, %d) = %s, memory broker %s", topic, after, limit, fmtHistory(hn), fmtHistory(hm))
				}
			}
		}
	}

	// After Close: ErrBrokerClosed.
	nb.Close()
	if _, err := nb.Publish(ctx, "lobby", realtime.Text("x")); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if _, err := nb.History(ctx, "lobby", 0, 0); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Fatalf("history after close: %v", err)
	}
}

// History survives a server restart with file storage.
func TestHistorySurvivesRestart(t *testing.T) {
	ns := startServer(t)
	b, c := newBroker(t, ns, &natsbroker.Options{History: 4})
	ctx := tctx(t)
	for i := 1; i <= 5; i++ {
		if _, err := b.Publish(ctx, "r", realtime.Text(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ns.stop()
	ns.start()
	select {
	case <-c.reconnected:
	case <-ctx.Done():
		t.Fatal("no reconnect")
	}
	h, err := b.History(ctx, "r", 0, 0)
	if err != nil || !h.Gap || h.Last != 5 || len(h.Entries) != 4 || h.Entries[0].Seq != 2 || string(h.Entries[3].Data) != "5" {
		t.Fatalf("history after restart: %s, %v", fmtHistory(h), err)
	}
	if seq, err := b.Publish(ctx, "r", realtime.Text("6")); err != nil || seq != 6 {
		t.Fatalf("publish after restart: %d, %v", seq, err)
	}
}
