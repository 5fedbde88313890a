package sse_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	r3sse "github.com/r3labs/sse/v2"
	"github.com/rtkit/rtkit/realtime"
	"gopkg.in/cenkalti/backoff.v1"
)

// TestR3labsClientInterop checks the stream against an independent Go SSE
// client that many services use: github.com/r3labs/sse/v2. It receives the
// session event and the messages, and when the server drops the TCP
// connection it reconnects with Last-Event-ID and receives what it missed,
// once and in order.
func TestR3labsClientInterop(t *testing.T) {
	s := newServer(t, echo, realtime.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	client := r3sse.NewClient(s.URL + "/?transport=sse")
	// Reconnect at once and forever, as DEPENDENCIES.md advises: the
	// default gives up silently after 15 minutes.
	client.ReconnectStrategy = &backoff.ConstantBackOff{}
	events := make(chan *r3sse.Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- client.SubscribeRawWithContext(ctx, func(ev *r3sse.Event) {
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		})
	}()
	next := func() *r3sse.Event { t.Helper(); return recv(t, events) }

	ev := next()
	if string(ev.Event) != "session" {
		t.Fatalf("first event %q", ev.Event)
	}
	var sess session
	if err := json.Unmarshal(ev.Data, &sess); err != nil {
		t.Fatal(err)
	}
	c := recv(t, s.conns)

	if code, body := post(t, s.URL, sess.Token, 1, "hello\nworld", nil); code != http.StatusNoContent {
		t.Fatal(code, body)
	}
	if ev := next(); string(ev.Data) != "hello\nworld" || string(ev.ID) != sess.Token+".1" {
		t.Fatalf("got id=%q data=%q", ev.ID, ev.Data)
	}

	// The network drops; messages sent meanwhile wait in the session.
	s.accepted.Drop()
	c.SendText("missed-1")
	c.SendText("missed-2")
	var got []string
	for len(got) < 2 {
		ev := next()
		if string(ev.Event) == "" || string(ev.Event) == "message" {
			got = append(got, string(ev.Data)+"@"+strings.TrimPrefix(string(ev.ID), sess.Token))
		}
	}
	if want := []string{"missed-1@.2", "missed-2@.3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after reconnect got %v, want %v", got, want)
	}
	if c.Cause() != nil {
		t.Fatalf("the connection closed during the blip: %v", c.Cause())
	}
	cancel()
	<-done
}
