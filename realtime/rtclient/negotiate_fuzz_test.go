package rtclient

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// answer is an http.RoundTripper that answers every request with body,
// as JSON.
type answer []byte

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(string(a))),
		Request:    r,
	}, nil
}

// FuzzNegotiation feeds the client's negotiation (the JSON answer to a
// route's GET, which whoever answers for the server writes) arbitrary
// bytes. It must not panic, and what it keeps must be safe to act on:
// only transports the client allows, each once; their URLs on the
// route's own origin (scheme and host), since the client sends its token
// to them; a keepalive that is off or no shorter than the ping interval
// announced, not an overflowed one.
func FuzzNegotiation(f *testing.F) {
	for _, s := range []string{
		`{"transports":[{"transport":"websocket","url":"/chat"},{"transport":"sse","url":"/chat?transport=sse"},{"transport":"longpoll","url":"/chat?transport=longpoll"}],"pingInterval":25000,"pongTimeout":10000,"readLimit":65536,"resumeWindow":30000}`,
		`{"transports":[{"transport":"sse","url":"https://evil.example/steal"}]}`,
		`{"transports":[{"transport":"sse","url":"//evil.example/steal"}]}`,
		`{"transports":[{"transport":"websocket","url":"ws://evil.example/"}]}`,
		`{"transports":[{"transport":"sse","url":"http://route.example/x"}]}`,
		`{"transports":[{"transport":"longpoll","url":"%zz"}]}`,
		`{"transports":[{"transport":"sse","url":""},{"transport":"sse","url":"/again"}]}`,
		`{"transports":[{"transport":"carrier-pigeon","url":"/"}]}`,
		`{"transports":[{"transport":"sse","url":"/"}],"pingInterval":9223372036854775807,"pongTimeout":9223372036854775807}`,
		`{"transports":[{"transport":"sse","url":"/"}],"pingInterval":9300000000000000,"pongTimeout":-5}`,
		`{"transports":[{"transport":"sse","url":"/"}],"pingInterval":-1,"readLimit":-1}`,
		`{"transports":[]}`, `{}`, `[]`, `null`, ``, `{"transports":"sse"}`,
	} {
		f.Add([]byte(s))
	}
	allowed := []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := newConn("https://route.example/chat", &Options{
			Transports: allowed,
			HTTPClient: &http.Client{Transport: answer(body)},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.abandon()
		if err := c.negotiate(); err != nil {
			return // Dial fails: nothing is acted on
		}
		if len(c.kinds) == 0 {
			t.Fatal("no transport left to try")
		}
		for i, k := range c.kinds {
			if !slices.Contains(allowed, k) || slices.Contains(c.kinds[:i], k) {
				t.Fatalf("kinds %v", c.kinds)
			}
			u := c.urls[k]
			if u == nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
				t.Fatalf("%s at %v: not the route's origin %s://%s", k, u, c.base.Scheme, c.base.Host)
			}
		}
		var n protocol.Negotiation
		if json.NewDecoder(bytes.NewReader(body)).Decode(&n) != nil || len(n.Transports) == 0 {
			// Not an answer: the client goes on with its defaults.
			if !slices.Equal(c.kinds, allowed) || c.idle != realtime.DefaultPingInterval+realtime.DefaultPongTimeout {
				t.Fatalf("no answer, yet kinds %v and keepalive %v", c.kinds, c.idle)
			}
			return
		}
		switch {
		case n.PingInterval <= 0:
			if c.idle != 0 {
				t.Fatalf("keepalive %v without pings", c.idle)
			}
		case c.idle < time.Duration(min(n.PingInterval, math.MaxInt64/int64(time.Millisecond)))*time.Millisecond:
			t.Fatalf("keepalive %v, shorter than the ping interval of %d ms", c.idle, n.PingInterval)
		}
	})
}
