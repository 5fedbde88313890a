package topics_test

import (
	"fmt"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// A catch-up reports the history it streamed as one EventCatchUp, and the
// gap it told the client of as an EventGap, on the connection's route.
func TestCatchUpEvents(t *testing.T) {
	events := make(chan realtime.Event, 64)
	o := *inMemory
	o.Name = "rooms"
	o.Observer = realtime.ObserverFunc(func(e realtime.Event) {
		if e.Kind == realtime.EventCatchUp || e.Kind == realtime.EventGap {
			events <- e
		}
	})
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: 3}))
	rt := realtime.NewRoute(roomHandler(ts), &o)
	for i := 1; i <= 5; i++ {
		if _, err := ts.Publish(tctx(t), "lobby", realtime.Text(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := realtimetest.DialRoute(rt, nil)
	c.SendText("lobby 0")
	if env := envOf(t, c); env.Gap == nil || env.Gap.After != 0 {
		t.Fatalf("want a gap first, got %+v", env)
	}
	for _, want := range []uint64{3, 4, 5} {
		if env := envOf(t, c); env.Seq != want {
			t.Fatalf("got %+v, want seq %d", env, want)
		}
	}
	var gap, catchUp realtime.Event
	for range 2 {
		select {
		case e := <-events:
			if e.Kind == realtime.EventGap {
				gap = e
			} else {
				catchUp = e
			}
		case <-tctx(t).Done():
			t.Fatal("no catch-up events")
		}
	}
	if gap.Kind != realtime.EventGap || gap.Route != "rooms" || gap.Conn == nil {
		t.Errorf("gap event %+v", gap)
	}
	if catchUp.Kind != realtime.EventCatchUp || catchUp.N != 3 || catchUp.Route != "rooms" || catchUp.Duration < 0 {
		t.Errorf("catch-up event %+v, want N 3", catchUp)
	}

	// Nothing else: one catch-up, one gap.
	if err := rt.Shutdown(tctx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		t.Errorf("unexpected %v event after the catch-up", e.Kind)
	default:
	}
}
