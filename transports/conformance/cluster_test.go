package conformance_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// Two nodes, no sticky sessions: the client's stream or first poll lands
// on node A, its POST-backs and later polls on node B, which forwards them
// through the broker to A.
func TestClusterForwardsSessionRequests(t *testing.T) {
	for _, tr := range []transport{transports[2], transports[3]} {
		t.Run(string(tr.kind), func(t *testing.T) {
			broker := topics.NewMemoryBroker(nil)
			o := realtime.Options{Relay: broker, Transports: []realtime.Transport{sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}}
			a := newFixture(t, tr, echo, o)
			b := newFixture(t, tr, echo, o)

			p := a.dial(nil).(resumer)
			c := a.nextOpen()
			if tr.kind == realtime.LongPoll {
				p.Drop() // the next polls go to B
			}
			// Everything from now on goes through B.
			sessionOf(p).f = b
			if err := p.SendText("via b"); err != nil {
				t.Fatal(err)
			}
			if tr.kind == realtime.LongPoll {
				p.Resume(t)
			}
			if got := recv(t, p); got != "via b" {
				t.Fatalf("got %q", got)
			}
			c.SendText("pushed on a")
			if got := recv(t, p); got != "pushed on a" {
				t.Fatalf("got %q", got)
			}
			// A token B forwards to a node that is gone: 404.
			req, _ := http.NewRequest(http.MethodPost, b.url, strings.NewReader("x"))
			req.Header.Set(realtime.HeaderToken, "ZZZZZZZZ"+strings.Repeat("A", 26))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown node: %s", resp.Status)
			}
			p.Close(4000, "bye") // a DELETE through B
			if cl := a.nextClose(); realtime.CloseStatus(cl.err) != 4000 {
				t.Fatalf("cause %v", cl.err)
			}
			if b.route.Len() != 0 {
				t.Fatal("node B holds a connection")
			}
		})
	}
}

func sessionOf(p peer) *session {
	switch p := p.(type) {
	case *ssePeer:
		return p.session
	case *lpPeer:
		return p.session
	}
	return nil
}
