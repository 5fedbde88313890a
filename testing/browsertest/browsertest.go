// Package browsertest runs tests in a real headless Chromium, driven with
// chromedp. The browser is found on the PATH ("chromium", Debian's package,
// or "chromium-browser"); where there is none, NewTab skips the test with a
// message saying how to install it.
//
//	func TestPage(t *testing.T) {
//		tab := browsertest.NewTab(t)
//		var title string
//		if err := chromedp.Run(tab, chromedp.Navigate(url), chromedp.Title(&title)); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// One browser serves every test of a package; call Shutdown from TestMain
// after the tests ran.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the Chromium binary on the PATH, or "" when there is none.
func Path() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

// TabTimeout bounds each tab's life.
const TabTimeout = 60 * time.Second

// NewTab returns a new tab's context, starting the shared browser on first
// use, or skips t when Chromium is not installed. The tab closes when t
// ends. Chromium runs with the flags a closed sandbox needs: headless, no
// sandbox (tests run as root in CI), no GPU, QUIC or background
// networking, and a fresh profile.
func NewTab(t testing.TB) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		t.Skip("chromium not found on PATH: apt-get install chromium")
	}
	browser.once.Do(func() {
		dir, err := os.MkdirTemp("", "rtkit-chromium-")
		if err != nil {
			browser.err = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(dir),
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		if err := chromedp.Do(bctx); err != nil { // starts the browser
			browser.err = err
		}
		browser.ctx = bctx
		browser.cancel = func() { bcancel(); acancel(); os.RemoveAll(dir) }
	})
	if browser.err != nil {
		t.Fatalf("starting chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, TabTimeout)
	t.Cleanup(cancel2)
	return ctx
}

// Shutdown stops the shared browser, if one was started.
func Shutdown() {
	if browser.cancel != nil {
		browser.cancel()
	}
}
