package rtjs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tsc runs TypeScript from the lockfile, strictly, on files.
func tsc(t *testing.T, files ...string) {
	t.Helper()
	bin := npmTool(t, "tsc")
	args := append([]string{"--strict", "--noEmit", "--target", "es2022", "--lib", "es2022,dom",
		"--module", "esnext", "--moduleResolution", "bundler"}, files...)
	if out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("tsc %s: %v\n%s", strings.Join(files, " "), err, out)
	}
}

// The declarations type-check strictly against a usage file that uses
// every name they declare.
func TestTypeScriptUsage(t *testing.T) {
	usage, err := os.ReadFile(filepath.Join("testdata", "types", "usage.ts"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^export (?:declare )?(?:const|function|class|interface|type) ([A-Za-z]+)`)
	for _, f := range []string{"rtkit.d.ts", "react.d.ts"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			if !regexp.MustCompile(`\b` + m[1] + `\b`).Match(usage) {
				t.Errorf("%s declares %s, which testdata/types/usage.ts does not use", f, m[1])
			}
		}
	}
	tsc(t, filepath.Join("testdata", "types", "usage.ts"))
}

// shapes maps an event type to the declared type of the fields rtkit.js
// gives it (those Event, MessageEvent or CloseEvent do not declare).
var shapes = map[string]string{
	"open":        "Omit<rt.RealtimeOpenEvent, keyof Event>",
	"message":     `Omit<rt.RealtimeMessageEvent, keyof MessageEvent> & Pick<rt.RealtimeMessageEvent, "data">`,
	"close":       `Pick<rt.RealtimeCloseEvent, "code" | "reason" | "wasClean">`,
	"error":       "Omit<rt.RealtimeErrorEvent, keyof Event>",
	"statechange": "Omit<rt.RealtimeStateEvent, keyof Event>",
	"gap":         "Omit<rt.RealtimeGapEvent, keyof Event>",
	"refused":     "Omit<rt.RealtimeRefusedEvent, keyof Event>",
}

// The declarations describe what rtkit.js really emits: the page records
// every event's own fields on each transport (opens, messages of both
// kinds, a reconnect with its gap, a resume, a refused POST, a failed
// negotiation, closes), and each recording becomes an object literal
// assigned to its declared type, which tsc --strict checks field by field
// (an undeclared field, a missing one or a wrong type fails).
func TestTypeScriptEventShapes(t *testing.T) {
	npmTool(t, "tsc")
	var events []recorded
	for _, kind := range []string{"websocket", "sse", "longpoll"} {
		events = append(events, recordEvents(t, kind, 0)...)
	}
	events = append(events, recordEvents(t, "sse", 500)...) // a negotiation error event
	seen := map[string]bool{}
	abs, err := filepath.Abs("rtkit.js")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "import type * as rt from %q;\n", abs)
	for i, ev := range events {
		shape, ok := shapes[ev.Type]
		if !ok {
			t.Fatalf("rtkit.js emitted %q, which rtkit.d.ts's RealtimeEventMap does not name", ev.Type)
		}
		seen[ev.Type] = true
		delete(ev.Own, "isTrusted")
		lit, _ := json.Marshal(ev.Own)
		// ArrayBuffers were recorded as a marker.
		src := strings.ReplaceAll(string(lit), `"<ArrayBuffer>"`, "new ArrayBuffer(0)")
		fmt.Fprintf(&b, "export const e%d: %s = %s;\n", i, shape, src)
	}
	for typ := range shapes {
		if !seen[typ] {
			t.Errorf("no %s event was recorded", typ)
		}
	}
	file := filepath.Join(t.TempDir(), "events.ts")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tsc(t, file)
	t.Logf("%d events of %d types checked", len(events), len(seen))
}

type recorded struct {
	Type string         `json:"type"`
	Own  map[string]any `json:"own"`
}

// recordEvents runs one client through its life on kind and returns its
// events. With negotiate set, the negotiation is answered with it.
func recordEvents(t *testing.T, kind string, negotiate int) []recorded {
	t.Helper()
	ctx := newTab(t)
	p := &behaviourProxy{negotiate: negotiate, post: 403, postTimes: -1}
	f := newFixture(t, p.wrap)
	f.open(t, ctx, fmt.Sprintf(`
window.c = watch(new rt.RealtimeClient("/echo", {transports: [%q], minDelay: 20, maxDelay: 100}));
c.send("hi");
c.send(new Uint8Array([1, 2]));
true`, kind))
	const wait = 10 * time.Second
	waitFor(t, ctx, `log.msgs.length === 2`, wait)
	if kind != "websocket" {
		run(t, ctx, `c.send("m1"); true`) // refused by the proxy
		waitFor(t, ctx, `log.refused.length === 1`, wait)
		f.drop() // resumed
		waitFor(t, ctx, `log.opens.length === 2 && c.state === "open"`, wait)
	}
	run(t, ctx, `c.send("close:1012"); true`) // a reconnect, with a gap
	waitFor(t, ctx, `log.gaps.length === 1 && c.state === "open"`, wait)
	run(t, ctx, `c.close(4000, "bye"); true`)
	waitFor(t, ctx, `log.closes.length === 1`, wait)
	var evs []recorded
	if err := json.Unmarshal([]byte(eval[string](t, ctx, `JSON.stringify(log.events)`)), &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}
