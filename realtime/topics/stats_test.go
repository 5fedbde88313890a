package topics_test

import (
	"net/http"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Stats lists the topics with local subscribers, the most subscribed
// first, with the history the broker keeps; a topic whose last
// subscriber left is gone from it.
func TestStats(t *testing.T) {
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: 3}))
	subscribed := make(chan struct{}, 8)
	rt := realtime.NewRoute(realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		err := ts.Subscribe(c, m.Text())
		subscribed <- struct{}{}
		return err
	}}, &realtime.Options{Transports: []realtime.Transport{realtimetest.Memory}})
	t.Cleanup(func() { rt.Shutdown(tctx(t)) })
	dial := func(topic string) *realtimetest.Client {
		r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		c, err := realtimetest.DialRoute(rt, r)
		if err != nil {
			t.Fatal(err)
		}
		c.SendText(topic)
		<-subscribed
		return c
	}
	a1, _, b := dial("a"), dial("a"), dial("b")
	for range 5 {
		if _, err := ts.Publish(tctx(t), "a", realtime.Text("x")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ts.Stats(tctx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []topics.TopicStats{{Name: "a", Subscribers: 2, History: 3, Last: 5}, {Name: "b", Subscribers: 1}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if got, _ := ts.Stats(tctx(t), 1); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("limit 1: %+v", got)
	}
	b.Close(1000, "")
	<-b.Conn().Done()
	a1.Close(1000, "")
	<-a1.Conn().Done()
	got, _ = ts.Stats(tctx(t), 0)
	if len(got) != 1 || got[0].Name != "a" || got[0].Subscribers != 1 {
		t.Fatalf("after leaving: %+v", got)
	}
}
