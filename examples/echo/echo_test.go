package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

func TestEchoHandler(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock := realtimetest.NewClock(time.Now())
	c, err := realtimetest.Dial(newEcho(echoAgent), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")

	var r reply
	c.SendText("hello")
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "echo" || r.Text != "echo: hello" {
		t.Fatalf("got %+v, %v", r, err)
	}
	// The agent fails on an empty message: an error reply, and the
	// connection stays open.
	c.SendText("  ")
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "error" || r.Error != "nothing to echo" {
		t.Fatalf("got %+v, %v", r, err)
	}
	clock.Advance(heartbeatEvery)
	if err := c.ReceiveJSON(ctx, &r); err != nil || r.Type != "heartbeat" {
		t.Fatalf("got %+v, %v", r, err)
	}
	if c.CloseError() != nil {
		t.Fatalf("closed: %v", c.CloseError())
	}
}

// The example program itself, over real transports on loopback.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(u string) { urls <- u }) }()
	base := <-urls

	// The page.
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "new WebSocket") {
		t.Fatalf("page: %s", resp.Status)
	}

	// WebSocket.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	ws.WriteMessage(websocket.TextMessage, []byte("over ws"))
	var r reply
	if err := ws.ReadJSON(&r); err != nil || r.Text != "echo: over ws" {
		t.Fatalf("ws: %+v, %v", r, err)
	}

	// SSE: the session event comes first.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"echo", nil)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stream.Body).ReadString('\n')
	stream.Body.Close()
	if !strings.HasPrefix(line, "id: ") {
		t.Fatalf("sse: first line %q", line)
	}

	// Request/response.
	resp, err = http.Post(base+"echo", "text/plain", strings.NewReader("over http"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &r); err != nil || r.Text != "echo: over http" {
		t.Fatalf("http: %s", body)
	}

	// Shutdown closes the WebSocket with "going away".
	readErr := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage()
		readErr <- err
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := <-readErr; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("ws after shutdown: %v", err)
	}
	ws.Close()
}

// Echo and error replies carry no time at all (a zero time.Time would be
// "0001-01-01T00:00:00Z"); heartbeats carry theirs.
func TestRepliesCarryNoZeroTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clock := realtimetest.NewClock(time.Now())
	c, err := realtimetest.Dial(newEcho(echoAgent), &realtime.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")
	for _, in := range []string{"hello", " "} {
		c.SendText(in)
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(m.Data, &fields); err != nil {
			t.Fatal(err)
		}
		if _, ok := fields["time"]; ok {
			t.Errorf("reply to %q has a time: %s", in, m.Data)
		}
	}
	clock.Advance(heartbeatEvery)
	m, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hb reply
	if err := json.Unmarshal(m.Data, &hb); err != nil || hb.Type != "heartbeat" || hb.Time.IsZero() {
		t.Errorf("heartbeat %s (%v): want its time", m.Data, err)
	}
}
