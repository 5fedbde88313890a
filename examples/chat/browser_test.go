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

// The page, in a real browser, over each transport: sign in, land in
// #general, say something and see it come back through the room.
func TestPageInBrowser(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", "memory", func(u string) { urls <- u }) }()
	base := <-urls
	defer func() { cancel(); <-done }()

	for _, tr := range []string{"websocket", "sse", "longpoll"} {
		t.Run(tr, func(t *testing.T) {
			tab := browsertest.NewTab(t)
			poll := func(expr string) {
				t.Helper()
				if _, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
					log, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
					t.Fatalf("waiting for %s: %v\npage: %s", expr, err, log)
				}
			}
			if err := chromedp.Do(tab,
				chromedp.Navigate(base+"?transport="+tr),
				chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = "ada-`+tr+`"; document.getElementById("login").requestSubmit()`),
			); err != nil {
				t.Fatal(err)
			}
			poll(`document.getElementById("log").innerText.includes("ada-` + tr + ` joined")`)
			if err := chromedp.Do(tab,
				chromedp.Evaluate[chromedp.Void](`document.getElementById("text").value = "hello over `+tr+`"; document.getElementById("say").requestSubmit()`),
			); err != nil {
				t.Fatal(err)
			}
			poll(`document.getElementById("log").innerText.includes("hello over ` + tr + `")`)
			got, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.chat.transport`))
			if err != nil || got != tr {
				t.Fatalf("transport %q, %v", got, err)
			}
		})
	}
}
