package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/transports"
)

// run serves the example until its context ends; then it closes the
// connections with "going away" and stops the answer still running, whose
// end event says stopped, before it returns.
func TestRunShutsDownAnswers(t *testing.T) {
	g := newGate(3)
	a := newApp(settings{tokenDelay: time.Millisecond, grace: time.Hour})
	a.model.hold = g.hold
	ended := make(chan runReport, 1)
	a.convs.ended = func(r runReport) { ended <- r }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", a, transports.Messaging, func(u string) { urls <- u }) }()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatal(err)
	}

	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http:", "ws:", 1)+"agent", http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(wait))
	var j joined
	if err := ws.WriteJSON(command{Join: true}); err != nil {
		t.Fatal(err)
	}
	if err := ws.ReadJSON(&j); err != nil || !validConvID(j.Conv) {
		t.Fatalf("join: %+v, %v", j, err)
	}
	if err := ws.WriteJSON(command{Ask: "shut down", Conv: j.Conv}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.held:
	case <-time.After(wait):
		t.Fatal("the answer did not start")
	}

	// Read on, as a browser does: the close handshake needs the reply.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("run did not return")
	}
	select {
	case rep := <-ended: // before run returned
		if rep.Reason != reasonStopped || !errors.Is(rep.Cause, errShutdown) || rep.Tokens != 3 {
			t.Fatalf("report %+v", rep)
		}
	default:
		t.Fatal("run returned with an answer still running")
	}
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("connection ended with %v, want going away", err)
	}
}
