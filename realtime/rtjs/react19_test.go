package rtjs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

var reactBundle struct {
	once sync.Once
	js   []byte
	err  error
}

// bundleReact builds testdata/react-bundle.js with esbuild from the
// lockfile, once per test binary, or skips t where npm ci has not run.
func bundleReact(t *testing.T) []byte {
	t.Helper()
	esbuild := npmTool(t, "esbuild")
	reactBundle.once.Do(func() {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("rtkit-react-%d.js", os.Getpid()))
		defer os.Remove(out)
		cmd := exec.Command(esbuild, filepath.Join("testdata", "react-bundle.js"), "--bundle", "--format=esm",
			`--define:process.env.NODE_ENV="development"`, "--log-level=warning", "--outfile="+out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			reactBundle.err = fmt.Errorf("esbuild: %v\n%s", err, msg)
			return
		}
		reactBundle.js, reactBundle.err = os.ReadFile(out)
	})
	if reactBundle.err != nil {
		t.Fatal(reactBundle.err)
	}
	return reactBundle.js
}

// react19Page mounts one component in StrictMode. Its token is state, so
// window.setToken changes it; window.unmountApp unmounts the root.
const react19Page = `<!doctype html>
<script type="importmap">{"imports": {"react": "/npm/react.js"}}</script>
<div id="root"></div>
<script type="module">
import { createElement as h, StrictMode, useState, createRoot, version } from "react";
import { useRealtime } from "/rtkit/react.js";
const transport = new URLSearchParams(location.search).get("transport");
window.seen = [];
window.reactVersion = version;
let setToken = null;
function App() {
  const [token, set] = useState("t1");
  setToken = set;
  const rt = useRealtime("/echo", { transports: [transport], token, minDelay: 20, onMessage: (e) => window.seen.push(e.data) });
  window.hook = rt;
  return h("p", null, rt.state + " " + (rt.lastMessage ? rt.lastMessage.data : ""));
}
const root = createRoot(document.getElementById("root"));
root.render(h(StrictMode, null, h(App)));
window.setToken = (t) => setToken(t);
window.unmountApp = () => root.unmount();
window.ready = true;
</script>`

// connEvent is an open or a close the server's handler saw.
type connEvent struct {
	open   bool
	token  string
	code   int
	reason string
}

// useRealtime with React 19 itself, in StrictMode: the effect mounted
// twice leaves exactly one live connection and loses no message; a token
// change reconnects (the old connection closes with the hook's 1000
// "unmounted"); unmounting closes the last one, and the server's handler
// sees the client's code.
func TestReact19(t *testing.T) {
	bundle := bundleReact(t)
	events := make(chan connEvent, 64)
	route := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			tok := realtime.BearerToken(c.Request())
			events <- connEvent{open: true, token: tok}
			for i := 1; i <= 3; i++ {
				c.SendText(fmt.Sprintf("hello:%s:%d", tok, i))
			}
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		OnClose: func(c *realtime.Conn, err error) {
			ce, _ := err.(*realtime.CloseError)
			ev := connEvent{token: realtime.BearerToken(c.Request()), code: -1}
			if ce != nil {
				ev.code, ev.reason = ce.Code, ce.Reason
			} else if err == nil {
				ev.code = realtime.CloseNormal
			}
			events <- ev
		},
	}, &realtime.Options{Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}})
	mux := http.NewServeMux()
	mux.Handle(rtjs.Path, rtjs.Handler())
	mux.Handle("/echo", route)
	mux.HandleFunc("/npm/react.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(bundle)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(react19Page))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer route.Shutdown(t.Context())

	for _, tr := range []string{"websocket", "sse", "longpoll"} {
		t.Run(tr, func(t *testing.T) {
			live := map[string]int{} // token -> open connections
			var closes []connEvent
			// await reads the server's events until ok holds.
			await := func(what string, ok func() bool) {
				t.Helper()
				deadline := time.After(10 * time.Second)
				for !ok() {
					select {
					case ev := <-events:
						if ev.open {
							live[ev.token]++
						} else {
							live[ev.token]--
							closes = append(closes, ev)
						}
					case <-deadline:
						t.Fatalf("%s: server saw live %v, closes %+v", what, live, closes)
					}
				}
			}
			total := func() int {
				n := 0
				for _, v := range live {
					n += v
				}
				return n
			}
			tab := newTab(t)
			if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/?transport="+tr)); err != nil {
				t.Fatal(err)
			}
			waitForTab(t, tab, `window.hook && window.hook.state === "open" && window.hook.transport === "`+tr+`" && window.seen.length >= 3`)
			if v := eval[string](t, tab, `window.reactVersion`); !strings.HasPrefix(v, "19.") {
				t.Fatalf("React %s, want 19", v)
			}
			await("StrictMode mount", func() bool { return live["t1"] == 1 && total() == 1 })
			run(t, tab, `window.hook.send("ping"); true`)
			waitForTab(t, tab, `window.seen.includes("ping")`)
			if got := eval[[]string](t, tab, `window.seen`); strings.Join(got, ",") != "hello:t1:1,hello:t1:2,hello:t1:3,ping" {
				t.Fatalf("onMessage saw %q: each message once, in order", got)
			}

			run(t, tab, `window.setToken("t2"); true`)
			waitForTab(t, tab, `window.seen.includes("hello:t2:3") && window.hook.state === "open"`)
			await("token change", func() bool { return live["t1"] == 0 && live["t2"] == 1 })
			if c := closes[len(closes)-1]; c.token != "t1" || c.code != realtime.CloseNormal || c.reason != "unmounted" {
				t.Errorf("the old connection closed with %+v, want the hook's 1000 \"unmounted\"", c)
			}
			if got := eval[[]string](t, tab, `window.seen.slice(4)`); strings.Join(got, ",") != "hello:t2:1,hello:t2:2,hello:t2:3" {
				t.Errorf("after the token change onMessage saw %q", got)
			}

			run(t, tab, `window.unmountApp(); true`)
			await("unmount", func() bool { return total() == 0 })
			if c := closes[len(closes)-1]; c.token != "t2" || c.code != realtime.CloseNormal || c.reason != "unmounted" {
				t.Errorf("unmount closed with %+v, want 1000 \"unmounted\"", c)
			}
			for _, c := range closes {
				if c.code != realtime.CloseNormal {
					t.Errorf("a connection closed with %+v: the server heard no close from the client", c)
				}
			}
		})
	}
}
