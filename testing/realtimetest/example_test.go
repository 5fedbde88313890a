package realtimetest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ExampleRun() {
	shout := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		return c.SendText(strings.ToUpper(m.Text()))
	}}
	rec, _ := realtimetest.Run(shout, nil, realtime.Text("hello"), realtime.Text("world"))
	fmt.Println(rec.Texts(), rec.Code)
	// Output: [HELLO WORLD] 1000
}

func ExampleClock() {
	clock := realtimetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	heartbeat := realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		c.Every(5*time.Second, func() { c.SendText("beat") })
		return nil
	}}
	c, _ := realtimetest.Dial(heartbeat, &realtime.Options{Clock: clock})
	defer c.Close(realtime.CloseNormal, "")

	clock.Advance(10 * time.Second) // two beats, in microseconds
	for range 2 {
		s, _ := c.ReceiveText(context.Background())
		fmt.Println(s, clock.Now().Format("15:04:05"))
	}
	// Output:
	// beat 00:00:10
	// beat 00:00:10
}

func ExampleDial() {
	c, _ := realtimetest.Dial(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return c.Close(4001, "no "+m.Text())
		},
	}, nil)
	c.SendText("thanks")
	_, err := c.Receive(context.Background())
	fmt.Println(realtime.CloseStatus(err), err)
	// Output: 4001 realtime: closed with code 4001 (no thanks)
}
