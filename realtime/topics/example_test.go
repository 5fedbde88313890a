package topics_test

import (
	"context"
	"fmt"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Every connection of the route follows the "news" topic from its start;
// a message published once reaches each of them in an envelope that says
// where it is in the topic, for resuming after a reconnect.
func ExampleTopics() {
	ts := topics.New(nil) // in-memory broker
	route := realtime.NewRoute(realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return ts.Resume(c, "news", 0)
	}}, &realtime.Options{Transports: []realtime.Transport{realtimetest.Memory}})
	defer route.Shutdown(context.Background())

	c, _ := realtimetest.DialRoute(route, nil)
	ts.Publish(context.Background(), "news", realtime.Text("rtkit ships topics"))
	s, _ := c.ReceiveText(context.Background())
	fmt.Println(s)
	// Output: {"topic":"news","seq":1,"data":"rtkit ships topics"}
}
