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

// The handler in memory with a fake clock: one notification per interval,
// and closing the connection stops the ticker.
func TestNotifier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := realtimetest.NewClock(start)
	c, err := realtimetest.Dial(newNotifier(defaultEvery, clock.Now), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if clock.Pending() != 1 {
		t.Fatalf("pending timers after Open: %d, want the ticker", clock.Pending())
	}
	expired, stop := context.WithCancel(ctx)
	stop() // Receive with an ended context returns only what is already there

	clock.Advance(defaultEvery - time.Millisecond)
	if m, err := c.Receive(expired); err == nil {
		t.Fatalf("notification before the interval: %s", m.Text())
	}
	for id := 1; id <= 2; id++ {
		clock.Advance(time.Millisecond)
		var n notification
		if err := c.ReceiveJSON(ctx, &n); err != nil {
			t.Fatal(err)
		}
		want := notification{Type: "notification", ID: id, Title: titles[id-1], Time: clock.Now()}
		if n != want {
			t.Fatalf("got %+v, want %+v", n, want)
		}
		if m, err := c.Receive(expired); err == nil {
			t.Fatalf("a second notification in one interval: %s", m.Text())
		}
		clock.Advance(defaultEvery - time.Millisecond)
	}

	// No cleanup in the handler: the ticker stops with the connection.
	c.Close(realtime.CloseNormal, "")
	<-c.Done()
	if n := clock.Pending(); n != 0 {
		t.Fatalf("%d timers pending after close", n)
	}
}

// The program over real transports: the route prefers SSE, and every
// transport delivers numbered notifications.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", 20*time.Millisecond, func(u string) { urls <- u }) }()
	base := <-urls

	for _, path := range []string{"", "rtkit/rtkit.js"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "RealtimeClient") {
			t.Fatalf("GET /%s: %s", path, resp.Status)
		}
	}

	// Negotiation: SSE comes first, so the browser client lands on it.
	resp, err := http.Get(base + "notifications")
	if err != nil {
		t.Fatal(err)
	}
	var neg struct {
		Transports []struct{ Transport realtime.Kind }
	}
	json.NewDecoder(resp.Body).Decode(&neg)
	resp.Body.Close()
	if len(neg.Transports) == 0 || neg.Transports[0].Transport != realtime.SSE {
		t.Fatalf("negotiation: %+v", neg)
	}

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for _, k := range []realtime.Kind{realtime.SSE, realtime.WebSocket, realtime.LongPoll} {
		c, err := rtclient.Dial(rctx, base+"notifications", &rtclient.Options{Transports: []realtime.Kind{k}})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if c.Transport() != k {
			t.Fatalf("on %s, want %s", c.Transport(), k)
		}
		for id := 1; id <= 2; id++ {
			m, err := c.Receive(rctx)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			var n notification
			if err := json.Unmarshal(m.Data, &n); err != nil || n.Type != "notification" || n.ID != id || n.Title == "" || n.Time.IsZero() {
				t.Fatalf("%s: %s (%v)", k, m.Data, err)
			}
		}
		c.Close(realtime.CloseNormal, "")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
