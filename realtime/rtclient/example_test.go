package rtclient_test

import (
	"context"
	"fmt"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func ExampleDial() {
	echo := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) }}
	srv := realtimetest.NewServer(echo, nil)
	defer srv.Close()

	ctx := context.Background()
	c, err := rtclient.Dial(ctx, srv.URL, &rtclient.Options{Token: "secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(realtime.CloseNormal, "bye")
	if err := c.SendText(ctx, "hello"); err != nil {
		fmt.Println(err)
		return
	}
	m, err := c.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Transport(), m.Text())
	// Output: websocket hello
}
