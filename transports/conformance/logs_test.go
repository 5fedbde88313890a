package conformance_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// bearer is the credential every scripted client presents. Like a session
// token it must never reach a log line.
const bearer = "s3cret-bearer-credential"

// loggedHandler logs through the connection's logger and fails on
// demand, so that every kind of line the core writes is written.
var loggedHandler = realtime.Funcs{
	OnOpen: func(c *realtime.Conn) error {
		c.Logger().Info("app: opened", "authenticated", realtime.BearerToken(c.Request()) != "")
		return nil
	},
	OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		c.Logger().Info("app: got", "text", m.Text())
		switch m.Text() {
		case "fail":
			return errBoom
		case "panic":
			panic("boom")
		}
		return c.Send(m)
	},
}

// script runs a connection over tr that presents the bearer credential,
// echoes, then fails as asked ("fail" or "panic"), and a request from a
// foreign origin. It returns the secrets the client held.
func script(t *testing.T, tr transport, logger *slog.Logger, fail string) []string {
	t.Helper()
	f := newFixture(t, tr, loggedHandler, realtime.Options{Logger: logger})
	auth := http.Header{"Authorization": {"Bearer " + bearer}}
	secrets := []string{bearer}
	if tr.kind == realtime.HTTP {
		f.exchange("hi", auth)
		f.nextClose()
		f.exchange(fail, auth)
		f.nextClose()
	} else {
		p := f.dial(auth)
		c := f.nextOpen()
		p.SendText("hi")
		recv(t, p)
		if r, ok := p.(resumer); ok {
			secrets = append(secrets, r.Token())
		}
		sendAsync(t, tr, p, fail)
		closeOf(t, p)
		<-c.Done()
	}
	if tr.kind != realtime.Memory {
		req, _ := http.NewRequest(http.MethodGet, f.url, nil)
		req.Header.Set("Origin", "http://elsewhere.example")
		req.Header.Set("Authorization", "Bearer "+bearer)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return secrets
}

// relayScript runs an SSE session on node A whose POSTs and DELETE reach
// node B, which forwards them to A through a shared MemoryBroker.
func relayScript(t *testing.T, logger *slog.Logger) []string {
	t.Helper()
	broker := topics.NewMemoryBroker(nil)
	o := realtime.Options{Relay: broker, Logger: logger, Transports: []realtime.Transport{sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}}
	sseT := transports[2]
	a := newFixture(t, sseT, loggedHandler, o)
	b := newFixture(t, sseT, loggedHandler, o)
	p := a.dial(http.Header{"Authorization": {"Bearer " + bearer}}).(resumer)
	c := a.nextOpen()
	sessionOf(p).f = b
	if err := p.SendText("via b"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, p); got != "via b" {
		t.Fatalf("got %q", got)
	}
	p.SendText("fail")
	closeOf(t, p)
	<-c.Done()
	return []string{bearer, p.Token()}
}

// jsonLogger logs at every level, as JSON, into buf.
func jsonLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var loggedTransports = append(slices.Clone(transports), httpTransport)

// No log line carries a client's credential, at any level, on any
// transport or across the relay: neither the bearer token it presented
// nor its session token. (TestTokenNeverLogged covers the session
// token on the session transports; this covers them all.)
func TestSecretsNeverLogged(t *testing.T) {
	run := func(t *testing.T, do func(*slog.Logger) []string) {
		var buf syncBuffer
		secrets := do(jsonLogger(&buf))
		log := buf.String()
		if !strings.Contains(log, `"msg":"realtime: connection closed"`) {
			t.Fatalf("no close line: the script did not run as meant:\n%s", log)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(log, s) {
				t.Fatalf("a secret (%.6s...) is in the log:\n%s", s, log)
			}
		}
	}
	for _, tr := range loggedTransports {
		for _, fail := range []string{"fail", "panic"} {
			t.Run(string(tr.kind)+"/"+fail, func(t *testing.T) {
				run(t, func(l *slog.Logger) []string { return script(t, tr, l, fail) })
			})
		}
	}
	t.Run("relay", func(t *testing.T) {
		run(t, func(l *slog.Logger) []string { return relayScript(t, l) })
	})
}

// logKeys are the keys of each line the core and the transports write,
// as realtime's doc.go "Logs" section lists them, besides slog's time,
// level and msg. Lines written through Conn.Logger carry connKeys too.
var (
	connKeys = []string{"conn", "route", "transport"}
	logKeys  = map[string][]string{
		"realtime: connection closed":         {"conn", "route", "transport", "code", "reason", "duration", "msgs_in", "bytes_in", "msgs_out", "bytes_out"},
		"realtime: handler error":             {"conn", "route", "transport", "err"},
		"realtime: handler panic":             {"conn", "route", "transport", "panic", "stack"},
		"realtime: origin refused":            {"origin", "host"},
		"realtime: relaying a request failed": {"err"},
		"realtime: serving relayed requests failed; this node cannot be reached by others": {"err"},
	}
)

// Every line the core and the transports write is structured: JSON under
// a JSON handler, a constant message, and exactly the keys documented for
// it, on every transport and across the relay. The application's own
// lines through Conn.Logger carry the connection's keys.
func TestLogLinesAreStructured(t *testing.T) {
	check := func(t *testing.T, buf *syncBuffer) {
		t.Helper()
		seen := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON object: %q: %v", sc.Text(), err)
			}
			msg, _ := line["msg"].(string)
			delete(line, "time")
			delete(line, "level")
			delete(line, "msg")
			keys := slices.Sorted(maps.Keys(line))
			if strings.HasPrefix(msg, "app: ") {
				for _, k := range connKeys {
					if _, ok := line[k]; !ok {
						t.Errorf("%q lacks %q: %v", msg, k, keys)
					}
				}
				continue
			}
			want, ok := logKeys[msg]
			if !ok {
				t.Errorf("an undocumented line %q with keys %v", msg, keys)
				continue
			}
			if !slices.Equal(keys, slices.Sorted(slices.Values(want))) {
				t.Errorf("%q has keys %v, want %v", msg, keys, want)
			}
			seen[msg] = true
		}
		if !seen["realtime: connection closed"] {
			t.Errorf("no close line in:\n%s", buf.String())
		}
	}
	for _, tr := range loggedTransports {
		t.Run(string(tr.kind), func(t *testing.T) {
			var buf syncBuffer
			script(t, tr, jsonLogger(&buf), "fail")
			script(t, tr, jsonLogger(&buf), "panic")
			check(t, &buf)
		})
	}
	t.Run("relay", func(t *testing.T) {
		var buf syncBuffer
		relayScript(t, jsonLogger(&buf))
		check(t, &buf)
	})
}
