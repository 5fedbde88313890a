package conformance_test

import (
	"fmt"
	"net/http"
	"runtime"
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

// A dropped SSE stream that comes back to another node resumes there: B
// follows the session on A through the broker, so the client gets what
// it missed, in order and exactly once, then the live stream, and a gap
// beyond the backlog; its POST-backs reach A's handler. No sticky
// sessions.
func TestClusterResumesAStreamOnAnyNode(t *testing.T) {
	broker := topics.NewMemoryBroker(nil)
	obs := newTally()
	o := realtime.Options{Relay: broker, ResumeBuffer: 4, SendQueue: 1 << 20, Observer: obs, Transports: []realtime.Transport{sse.New(sse.Options{})}}
	a := newFixture(t, transports[2], echo, o)
	b := newFixture(t, transports[2], echo, o)

	p := a.dial(nil).(*ssePeer)
	c := a.nextOpen()
	c.SendText("m1")
	if got := recv(t, p); got != "m1" {
		t.Fatalf("got %q", got)
	}
	p.Drop()
	for _, m := range []string{"m2", "m3"} {
		c.SendText(m)
	}
	p.f = b // the balancer sends the reconnect to B
	p.Resume(t)
	for _, want := range []string{"m2", "m3"} {
		if got := recv(t, p); got != want {
			t.Fatalf("got %q, want %s", got, want)
		}
	}
	c.SendText("live")
	if got := recv(t, p); got != "live" {
		t.Fatalf("got %q, want the live message through B", got)
	}
	if err := p.SendText("up via b"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, p); got != "up via b" {
		t.Fatalf("echo %q", got)
	}
	if n := b.route.Len(); n != 0 {
		t.Fatalf("node B opened %d connections of its own", n)
	}

	// Away too long for the backlog: a gap, then what is kept. Until A
	// hears that B's reads have stopped, messages still go to them; then
	// they pile up in A's backlog and the oldest go.
	p.Drop()
	n := 0
	for ; c.Dropped() == 0; n++ {
		if n == 100000 {
			t.Fatal("A's backlog never overflowed")
		}
		c.SendText(fmt.Sprint("burst ", n))
		runtime.Gosched()
	}
	p.Resume(t)
	if got := recv(t, p); !strings.HasPrefix(got, "gap:") {
		t.Fatalf("got %q, want a gap", got)
	}
	want := fmt.Sprint("burst ", n-1)
	for last := ""; last != want; {
		last = recv(t, p)
		if !strings.HasPrefix(last, "burst ") {
			t.Fatalf("got %q after the gap", last)
		}
	}
	if n := len(obs.of(realtime.EventResume)); n != 2 {
		t.Fatalf("%d resumes counted, want 2", n)
	}
	p.Close(4000, "bye")
	if cl := a.nextClose(); realtime.CloseStatus(cl.err) != 4000 {
		t.Fatalf("cause %v", cl.err)
	}
}
