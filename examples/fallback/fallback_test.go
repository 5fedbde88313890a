package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// The handler in memory: echo, error reply, heartbeat on the fake clock.
func TestEchoHandler(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock := realtimetest.NewClock(time.Now())
	c, err := realtimetest.Dial(newEcho(echoAgent), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	c.SendText("hello")
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "echo" || r.Text != "echo: hello" || r.Transport != "memory" {
		t.Fatalf("got %+v, %v", r, err)
	}
	c.SendText(" ")
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "error" {
		t.Fatalf("got %+v, %v", r, err)
	}
	clock.Advance(heartbeatEvery)
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "heartbeat" {
		t.Fatalf("got %+v, %v", r, err)
	}
	c.Close(realtime.CloseNormal, "")
	<-c.Done()
	if n := clock.Pending(); n != 0 {
		t.Fatalf("%d timers pending after close", n)
	}
}

// The program behind each kind of proxy: the client, allowed every
// transport, lands on the first that gets through.
func TestRun(t *testing.T) {
	all := []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	for _, tc := range []struct {
		name          string
		block, buffer bool
		allowed       []realtime.Kind
		want          realtime.Kind
	}{
		{"direct", false, false, all, realtime.WebSocket},
		{"block-upgrades", true, false, all, realtime.SSE},
		{"block-upgrades+buffer-streams", true, true, all, realtime.LongPoll},
		{"buffer-streams", false, true, all, realtime.WebSocket},
		{"buffer-streams, no WebSocket", false, true, []realtime.Kind{realtime.SSE, realtime.LongPoll}, realtime.LongPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			urls := make(chan string, 1)
			done := make(chan error, 1)
			cfg := config{addr: "127.0.0.1:0", blockUpgrades: tc.block, bufferStreams: tc.buffer}
			go func() { done <- run(ctx, cfg, func(u string) { urls <- u }) }()
			base := <-urls

			resp, err := http.Get(base)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "/rtkit/rtkit.js") {
				t.Fatalf("page: %s", resp.Status)
			}

			rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
			defer rcancel()
			c, err := rtclient.Dial(rctx, base+"echo", &rtclient.Options{
				Transports: tc.allowed,
				// Short, so that the buffered stream is given up quickly;
				// a working stream's first event comes at once.
				UpgradeTimeout:    time.Second,
				FirstEventTimeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.Transport() != tc.want {
				t.Fatalf("landed on %s, want %s", c.Transport(), tc.want)
			}
			c.SendText(rctx, "hi")
			var r reply
			m, err := c.Receive(rctx)
			if err == nil {
				err = json.Unmarshal(m.Data, &r)
			}
			if err != nil || r.Text != "echo: hi" || r.Transport != string(tc.want) {
				t.Fatalf("got %+v, %v", r, err)
			}
			c.Close(realtime.CloseNormal, "")

			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
		})
	}
}
