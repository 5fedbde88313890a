package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// reply is any message the handler sends: a joined reply, a problem, or a
// topic envelope carrying an event.
type reply struct {
	joined
	problem
	topics.Envelope
}

// peer is an in-memory connection to the agent's handler.
type peer struct {
	t *testing.T
	c *realtimetest.Client
}

func dialAgent(t *testing.T, a *agent) *peer {
	t.Helper()
	c, err := realtimetest.Dial(a.handler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &peer{t, c}
}

func (p *peer) send(cmd command) {
	p.t.Helper()
	m, _ := realtime.JSON(cmd)
	if err := p.c.Send(m); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) receive() reply {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var r reply
	if err := p.c.ReceiveJSON(ctx, &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

// receiveEvent receives a topic envelope and decodes its event.
func (p *peer) receiveEvent() (uint64, event) {
	p.t.Helper()
	r := p.receive()
	var ev event
	if r.Data == nil || json.Unmarshal([]byte(*r.Data), &ev) != nil {
		p.t.Fatalf("got %+v, want an event", r)
	}
	return r.Seq, ev
}

func (p *peer) wantError(msg string) {
	p.t.Helper()
	if r := p.receive(); r.Error != msg {
		p.t.Fatalf("got %+v, want error %q", r, msg)
	}
}

// The handler over an in-memory connection: a join makes a conversation,
// an ask streams on its topic, a second ask is refused, Stop ends the
// answer, and a second page joining later replays it all.
func TestHandler(t *testing.T) {
	r := newRegistry(t, 2)
	a := &agent{topics: r.cs.topics, convs: r.cs}
	p := dialAgent(t, a)

	p.send(command{Join: true, Conv: "not-an-id"})
	p.wantError("bad conversation id")
	p.send(command{Ask: "hi", Conv: "0123"})
	p.wantError("bad conversation id")
	p.c.Send(realtime.Text("{"))
	p.wantError("malformed command")
	p.send(command{})
	p.wantError("unknown command")

	p.send(command{Join: true})
	conv := p.receive().Conv
	if !validConvID(conv) {
		t.Fatalf("joined %q", conv)
	}
	p.send(command{Ask: "  ", Conv: conv})
	p.wantError("a prompt has 1 to 2000 characters")
	p.send(command{Ask: "hi there", Conv: conv})
	r.waitHeld()
	want := []event{{Type: "start", Prompt: "hi there"}, {Type: "token", Text: answer("hi there")[0]}, {Type: "token", Text: answer("hi there")[1]}}
	for i, w := range want {
		if seq, ev := p.receiveEvent(); seq != uint64(i+1) || ev != w {
			t.Fatalf("event %d: %d %+v, want %+v", i+1, seq, ev, w)
		}
	}
	p.send(command{Ask: "again", Conv: conv})
	p.wantError(errBusy.Error())
	p.send(command{Stop: true, Conv: conv})
	if _, ev := p.receiveEvent(); ev != (event{Type: "end", Reason: reasonStopped}) {
		t.Fatalf("got %+v, want the end", ev)
	}
	p.send(command{Stop: true, Conv: conv})
	p.wantError("no answer is running")
	if a.opened.Load() != 1 {
		t.Errorf("opened %d", a.opened.Load())
	}

	// A second page (a reload) replays the conversation from the start.
	q := dialAgent(t, a)
	q.send(command{Join: true, Conv: conv})
	if got := q.receive().Conv; got != conv {
		t.Fatalf("joined %q, want %q", got, conv)
	}
	for i := range 4 {
		if seq, _ := q.receiveEvent(); seq != uint64(i+1) {
			t.Fatalf("replayed seq %d, want %d", seq, i+1)
		}
	}

	// Closing both connections leaves nobody watching: the registry forgets
	// the conversation (its topic keeps the history).
	p.c.Close(realtime.CloseNormal, "")
	q.c.Close(realtime.CloseNormal, "")
	r.cs.mu.Lock()
	defer r.cs.mu.Unlock()
	if n := len(r.cs.convs); n != 0 {
		t.Errorf("%d conversations kept", n)
	}
}
