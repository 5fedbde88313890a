package main

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/browsertest"
)

var inspectorShot = flag.String("inspector-screenshot", "", "write a PNG of the inspector page to this file (the README's screenshot)")

// The inspector, in a real browser, next to the chat with a client on
// each of its transports: it shows the connections counted by transport,
// one row each, #general with its three subscribers, and this node with
// the rest of the cluster unknown.
func TestInspectorInBrowser(t *testing.T) {
	base, debug := debugChat(t)
	clients := map[string]realtime.Kind{"ada": realtime.WebSocket, "bob": realtime.SSE, "cy": realtime.LongPoll}
	for name, k := range clients {
		c := chatter(t, base, name, k)
		line := name + " is here over " + string(k)
		if err := c.SendJSON(ctxT(t), command{Room: "general", Text: line}); err != nil {
			t.Fatal(err)
		}
		hear(t, c, line) // joined and subscribed
	}

	tab := browsertest.NewTab(t)
	if err := chromedp.Do(tab,
		chromedp.EmulateViewport(1100, 720),
		chromedp.Navigate(debug+"/debug/rtkit/"),
	); err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		`document.querySelector('[data-route="/chat"] [data-count="total"]')?.textContent === "3"`,
		`document.querySelector('[data-route="/chat"] [data-count="websocket"]')?.textContent === "1"`,
		`document.querySelector('[data-route="/chat"] [data-count="sse"]')?.textContent === "1"`,
		`document.querySelector('[data-route="/chat"] [data-count="longpoll"]')?.textContent === "1"`,
		`document.querySelectorAll('[data-route="/chat"] tr[data-conn]').length === 3`,
		`document.querySelector('[data-topics="rooms"] [data-topic="room:general"] [data-count="subscribers"]')?.textContent === "3"`,
		`document.getElementById("nodes-unknown") !== null`,
		`document.getElementById("status").textContent.startsWith("open")`,
	} {
		if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("waiting for %s: %v\npage: %s", expr, err, page)
		}
	}
	// The page refreshes itself: a fourth client shows up without a
	// reload.
	chatter(t, base, "dee", realtime.SSE)
	if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](
		`document.querySelector('[data-route="/chat"] [data-count="sse"]')?.textContent === "2"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the page did not refresh: %v", err)
	}
	if *inspectorShot != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*inspectorShot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
