package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/testing/browsertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Shutdown()
	os.Exit(code)
}

// The page in a real browser: the browser's own WebSocket, EventSource and
// fetch on each transport, and rtkit's client, each echoing a message.
func TestPageInBrowser(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(u string) { urls <- u }) }()
	base := <-urls
	defer func() { cancel(); <-done }()

	tab := browsertest.NewTab(t)
	if err := chromedp.Do(tab, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{"websocket", "sse", "longpoll", "http", "rtkit"} {
		t.Run(tr, func(t *testing.T) {
			js := `(() => {
  const r = document.querySelector('#pick input[value="` + tr + `"]');
  r.checked = true; r.dispatchEvent(new Event("change"));
  return true;
})()`
			if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](js)); err != nil {
				t.Fatal(err)
			}
			// Send once the transport is ready (request/response always is).
			send := `(() => {
  const s = document.getElementById("state").textContent;
  if (!(s === "open" || s.startsWith("ready"))) return false;
  document.getElementById("text").value = "hi over ` + tr + `";
  document.getElementById("form").requestSubmit();
  return true;
})()`
			if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](send, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
				t.Fatalf("never ready: %v", err)
			}
			want := `document.getElementById("log").innerText.includes("echo: hi over ` + tr + `")`
			if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](want, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
				log, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("log").innerText`))
				t.Fatalf("no echo: %v\nlog:\n%s", err, log)
			}
		})
	}
}
