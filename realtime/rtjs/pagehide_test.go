package rtjs_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
)

// promptly bounds how long a test waits for the server to see a client
// leave: well under the session's resume window (realtime's default, 30 s),
// after which the server would have ended the session anyway.
const promptly = 10 * time.Second

// waitClosed returns the cause the handler's Close received for the next
// connection that ends.
func waitClosed(t *testing.T, f *fixture, what string) *realtime.CloseError {
	t.Helper()
	select {
	case err := <-f.rec.closed:
		var ce *realtime.CloseError
		if ce, _ = err.(*realtime.CloseError); ce == nil {
			t.Fatalf("%s: Close got %v, not a *CloseError", what, err)
		}
		return ce
	case <-time.After(promptly):
		t.Fatalf("%s: the handler's Close did not run within %v", what, promptly)
		return nil
	}
}

// leftAs reports whether ce is how a page that went away ends a
// connection of kind: a session by its keepalive DELETE, 1001 "page
// closed"; a WebSocket by the browser's 1001 when the page is unloaded, or
// by the client's 1000 "page closed" when the page went into the
// back/forward cache with its socket open (Chromium 156 keeps such pages).
func leftAs(kind string, ce *realtime.CloseError) bool {
	if kind != "websocket" {
		return ce.Code == realtime.CloseGoingAway && ce.Reason == "page closed"
	}
	return ce.Code == realtime.CloseGoingAway || ce.Code == realtime.CloseNormal && ce.Reason == "page closed"
}

func wantLeft(kind string) string {
	if kind != "websocket" {
		return `1001 "page closed"`
	}
	return `1001, or 1000 "page closed"`
}

// Closing the tab or navigating away ends an SSE or long-poll session at
// once: the page's keepalive DELETE reaches the server, whose handler Close
// runs with 1001 instead of when the resume window runs out. A WebSocket is
// closed by the browser itself, or by the client when the page goes into
// the back/forward cache.
func TestPageGoneEndsSession(t *testing.T) {
	for _, kind := range []string{"sse", "longpoll", "websocket"} {
		for _, how := range []string{"close", "navigate"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				ctx := newTab(t)
				f := newFixture(t, nil)
				f.open(t, ctx, fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
c.send("here");
true`, kind))
				waitFor(t, ctx, `log.msgs.length === 1`, 10*time.Second)
				start := time.Now()
				var err error
				if how == "close" {
					err = chromedp.Cancel(ctx) // closes the tab
				} else {
					_, err = chromedp.Run(ctx, chromedp.Navigate("about:blank"))
				}
				if err != nil {
					t.Fatal(err)
				}
				ce := waitClosed(t, f, kind+" page "+how)
				t.Logf("%s, page %s: handler Close %d %q %v after leaving", kind, how, ce.Code, ce.Reason, time.Since(start).Round(time.Millisecond))
				if !leftAs(kind, ce) {
					t.Errorf("close %d %q, want %s", ce.Code, ce.Reason, wantLeft(kind))
				}
			})
		}
	}
}

// close() while reconnecting ends the session the client was resuming: the
// server hears the code and reason now, not after the resume window.
func TestCloseWhileReconnecting(t *testing.T) {
	for _, kind := range []string{"sse", "longpoll"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			var blocked atomic.Bool // refuse reads (streams, polls, negotiation) with 503
			f := newFixture(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if blocked.Load() && r.Method == http.MethodGet {
						realtime.WriteError(w, http.StatusServiceUnavailable, "blocked")
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			f.open(t, ctx, fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
c.send("here");
true`, kind))
			waitFor(t, ctx, `log.msgs.length === 1`, 10*time.Second)
			blocked.Store(true)
			f.conns.Drop() // the stream or poll drops; resuming fails
			waitFor(t, ctx, `c.state === "reconnecting"`, 10*time.Second)
			select {
			case err := <-f.rec.closed:
				t.Fatalf("the session ended on its own: %v", err)
			default:
			}
			run(t, ctx, `c.close(4000, "bye"); true`)
			ce := waitClosed(t, f, kind+" close while reconnecting")
			if ce.Code != 4000 || ce.Reason != "bye" {
				t.Errorf("handler Close %d %q, want 4000 \"bye\"", ce.Code, ce.Reason)
			}
			waitFor(t, ctx, `c.state === "closed" && log.closes.length === 1`, 5*time.Second)
		})
	}
}

// A page that comes back from the back/forward cache connects again: its
// session ended on pagehide, so a new one starts and messages flow. (The
// restored page reports through the server: chromedp loses track of a page
// restored from the cache.)
func TestBackForwardCache(t *testing.T) {
	for _, kind := range []string{"sse", "longpoll", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			ctx := newTab(t)
			f := newFixture(t, nil)
			f.open(t, ctx, fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/echo", {transports: [%q]}));
addEventListener("pageshow", (e) => { if (e.persisted) c.send("restored " + c.state); });
c.send("before");
true`, kind))
			waitFor(t, ctx, `log.msgs.length === 1`, 10*time.Second)
			if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			if ce := waitClosed(t, f, kind+" page hidden"); !leftAs(kind, ce) {
				t.Errorf("close %d %q, want %s", ce.Code, ce.Reason, wantLeft(kind))
			}
			if _, err := chromedp.Run(ctx, goBack()); err != nil {
				t.Fatalf("going back: %v", err)
			}
			deadline := time.After(promptly)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for got := f.rec.messages(); len(got) < 2; got = f.rec.messages() {
				select {
				case <-tick.C:
				case <-deadline:
					if fresh, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.c === "undefined"`)); err == nil && fresh {
						t.Skip("the page was loaded again, not restored from the back/forward cache")
					}
					t.Fatalf("server got %q, want the restored page's message", got)
				}
			}
			if got := f.rec.messages(); !equal(got, []string{"before", "restored reconnecting"}) {
				t.Errorf("server got %q", got)
			}
			f.rec.mu.Lock()
			kinds := f.rec.kinds
			f.rec.mu.Unlock()
			if len(kinds) != 2 || string(kinds[1]) != kind {
				t.Errorf("connections %v, want a second %s one", kinds, kind)
			}
		})
	}
}

// goBack navigates the tab one entry back in its history, as the browser's
// Back button does, and returns once the browser has started the
// navigation. It waits neither for a load event, which a page restored
// from the back/forward cache never fires (chromedp.NavigateBack would wait
// until the tab's deadline), nor for a script's result: history.back()
// evaluated in the page can lose its reply when the page is swapped out
// first ("Inspected target navigated or closed", -32000).
// Page.navigateToHistoryEntry is answered by the browser process, which
// starts the navigation, not by the page that goes away.
func goBack() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		h, err := cdp.Call(ctx, t, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return err
		}
		if h.CurrentIndex <= 0 || h.CurrentIndex >= int64(len(h.Entries)) {
			return fmt.Errorf("no entry to go back to (at %d of %d)", h.CurrentIndex, len(h.Entries))
		}
		_, err = cdp.Call(ctx, t, page.NavigateToHistoryEntry, page.NavigateToHistoryEntryParams{EntryID: h.Entries[h.CurrentIndex-1].ID})
		return err
	})
}
