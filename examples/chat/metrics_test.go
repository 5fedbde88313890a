package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/examples/internal/serve"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
)

// debugChat runs the chat with -debug-addr on loopback and returns its
// URL and the debug server's.
func debugChat(t *testing.T) (base, debug string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	urls, debugURLs := make(chan string, 1), make(chan string, 1)
	d := &serve.Debug{Addr: "127.0.0.1:0", Ready: func(u string) { debugURLs <- u }}
	done := make(chan error, 1)
	go func() { done <- runDebug(ctx, "127.0.0.1:0", "memory", d, func(u string) { urls <- u }) }()
	select {
	case debug = <-debugURLs:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	base = <-urls
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return strings.TrimSuffix(base, "/"), strings.TrimSuffix(debug, "/")
}

// scrape reads the /metrics of a debug server into series -> value, keyed
// as the text format writes them: name{label="value",...}.
func scrape(t *testing.T, debug string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func chatLogin(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Post(base+"/login", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login: %s %v", resp.Status, err)
	}
	return out.Token
}

// chatter is a client signed in and in #general.
func chatter(t *testing.T, base, name string, k realtime.Kind) *rtclient.Conn {
	t.Helper()
	c, err := rtclient.Dial(ctxT(t), base+"/chat", &rtclient.Options{
		Token: chatLogin(t, base, name), Transports: []realtime.Kind{k},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(realtime.CloseNormal, "") })
	if err := c.SendJSON(ctxT(t), command{Join: "general"}); err != nil {
		t.Fatal(err)
	}
	return c
}

// hear reads c until a post with text arrives (presence and history come
// in between).
func hear(t *testing.T, c *rtclient.Conn, text string) {
	t.Helper()
	for {
		m, err := c.Receive(ctxT(t))
		if err != nil {
			t.Fatalf("waiting for %q: %v", text, err)
		}
		var env topics.Envelope
		json.Unmarshal(m.Data, &env)
		if env.Data == nil {
			continue
		}
		var p post
		json.Unmarshal([]byte(*env.Data), &p)
		if p.Text == text {
			return
		}
	}
}

// The counters the scrape config reads move while two people chat over
// different transports: each connection opened once on its transport,
// messages in and out.
func TestMetricsMoveWhileChatting(t *testing.T) {
	base, debug := debugChat(t)
	before := scrape(t, debug)
	const ws, sse = `{route="/chat",transport="websocket"}`, `{route="/chat",transport="sse"}`
	if before["rtkit_connections_opened_total"+ws] != 0 {
		t.Fatalf("connections before anyone came: %v", before)
	}

	ada := chatter(t, base, "ada", realtime.WebSocket)
	bob := chatter(t, base, "bob", realtime.SSE)
	for i, say := range []struct {
		who  *rtclient.Conn
		text string
	}{{ada, "hello bob"}, {bob, "hi ada"}, {ada, "bye"}} {
		if err := say.who.SendJSON(ctxT(t), command{Room: "general", Text: say.text}); err != nil {
			t.Fatal(err)
		}
		hear(t, ada, say.text)
		hear(t, bob, say.text)
		after := scrape(t, debug)
		for _, k := range []string{ws, sse} {
			if got := after["rtkit_connections_opened_total"+k]; got != 1 {
				t.Errorf("after %d lines: opened%s = %v, want 1", i+1, k, got)
			}
			if got := after["rtkit_connections"+k]; got != 1 {
				t.Errorf("after %d lines: live%s = %v, want 1", i+1, k, got)
			}
		}
		// Each said line is a message in; each heard line a message out
		// (with presence and history besides).
		in := after["rtkit_messages_received_total"+ws] + after["rtkit_messages_received_total"+sse]
		if want := float64(2 + i + 1); in != want { // two joins, then the lines
			t.Errorf("after %d lines: %v messages received, want %v", i+1, in, want)
		}
		if out := after["rtkit_messages_sent_total"+ws] + after["rtkit_messages_sent_total"+sse]; out < float64(2*(i+1)) {
			t.Errorf("after %d lines: %v messages sent, want at least %d", i+1, out, 2*(i+1))
		}
		if after["rtkit_sent_bytes_total"+sse] <= before["rtkit_sent_bytes_total"+sse] {
			t.Errorf("after %d lines: no bytes sent over SSE", i+1)
		}
		before = after
	}
	ada.Close(realtime.CloseNormal, "")
	// The server counts the close once its handler's Close has run, in
	// its own time: scrape until it shows, each scrape a round trip,
	// within ctxT's deadline.
	const closed = `rtkit_connections_closed_total{code="1000",route="/chat",transport="websocket"}`
	for ctx := ctxT(t); scrape(t, debug)[closed] != 1; {
		if ctx.Err() != nil {
			t.Fatal("ada's close was never counted")
		}
	}
	if got := scrape(t, debug)["rtkit_connections"+ws]; got != 0 {
		t.Fatalf("live%s = %v after ada left", ws, got)
	}
}
