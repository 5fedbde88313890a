package topics_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// brokerCalls records the EventPublish events an Observer is told.
type brokerCalls struct {
	mu   sync.Mutex
	ops  []string
	errs int
}

func (c *brokerCalls) Observe(e realtime.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Kind != realtime.EventPublish || e.Duration < 0 {
		panic("unexpected event")
	}
	c.ops = append(c.ops, e.Op)
	if e.Err != nil {
		c.errs++
	}
}

// Observe reports each broker call with its op and error, and keeps the
// broker's optional interfaces, and only those.
func TestObserveBroker(t *testing.T) {
	calls := &brokerCalls{}
	mem := topics.NewMemoryBroker(nil)
	b := topics.Observe(mem, calls)
	ctx := context.Background()
	if _, err := b.Publish(ctx, "t", realtime.Text("x")); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "t", func(topics.Entry) {})
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if h, err := b.History(ctx, "t", 0, 0); err != nil || len(h.Entries) != 1 {
		t.Fatalf("history %+v %v", h, err)
	}
	mem.Close()
	if _, err := b.Publish(ctx, "t", realtime.Text("y")); !errors.Is(err, topics.ErrBrokerClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	calls.mu.Lock()
	ops, errs := calls.ops, calls.errs
	calls.mu.Unlock()
	if want := []string{"publish", "subscribe", "history", "publish"}; len(ops) != 4 || ops[0] != want[0] || ops[1] != want[1] || ops[2] != want[2] || ops[3] != want[3] || errs != 1 {
		t.Fatalf("ops %v, %d errors", ops, errs)
	}
	if _, ok := b.(topics.PresenceStore); !ok {
		t.Error("the MemoryBroker's presence store is hidden")
	}
	if _, ok := b.(realtime.Relay); !ok {
		t.Error("the MemoryBroker's relay is hidden")
	}
	bare := topics.Observe(struct{ topics.Broker }{topics.NewMemoryBroker(nil)}, calls)
	if _, ok := bare.(topics.PresenceStore); ok {
		t.Error("a broker without presence gained a presence store")
	}
	if _, ok := bare.(realtime.Relay); ok {
		t.Error("a broker without relay gained one")
	}
}
