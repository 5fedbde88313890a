package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// The data path under the workloads the toolkit exists for: callbacks that
// take longer than the keepalive, peers that leave mid-call, sends while a
// callback runs, catch-ups longer than the send queue.

// wallClock is the real clock, for tests about real timeouts.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) realtime.Timer {
	return time.AfterFunc(d, f)
}

// slowHandler holds "slow" messages until release is closed or the
// connection's context ends, and echoes the others.
type slowHandler struct {
	started   chan string
	release   chan struct{}
	cancelled chan struct{} // closed when a held callback saw its context end
}

func newSlowHandler() *slowHandler {
	return &slowHandler{started: make(chan string, 64), release: make(chan struct{}), cancelled: make(chan struct{})}
}

func (h *slowHandler) funcs() realtime.Funcs {
	return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		h.started <- m.Text()
		if m.Text() != "slow" {
			return c.Send(m)
		}
		select {
		case <-h.release:
			return c.SendText("done")
		case <-c.Context().Done():
			close(h.cancelled)
			return nil
		}
	}}
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5s", what)
	}
	var zero T
	return zero
}

// sendAsync sends s and returns once it is on its way: the in-memory
// peer's Send waits for the handler, so it runs on a goroutine of its own
// there; the others return as soon as the server has the message.
func sendAsync(t *testing.T, tr transport, p peer, s string) {
	t.Helper()
	if tr.kind == realtime.Memory {
		go p.SendText(s)
		return
	}
	if err := p.SendText(s); err != nil {
		t.Fatalf("send %q: %v", s, err)
	}
}

// inBackground runs f on a goroutine and returns a channel closed when it
// has returned.
func inBackground(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return done
}

// A callback far longer than PingInterval+PongTimeout costs nothing: the
// server goes on reading pongs while it runs, and the reply arrives on a
// connection that lives on.
func TestSlowCallbackOutlastsKeepalive(t *testing.T) {
	h := newSlowHandler()
	tr := transports[1] // WebSocket: the one whose keepalive is pings
	f := newFixture(t, tr, h.funcs(), realtime.Options{Clock: wallClock{}, PingInterval: 20 * time.Millisecond, PongTimeout: 20 * time.Millisecond})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pings := make(chan struct{}, 100)
	ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	msgs := make(chan string, 16)
	go func() {
		defer close(msgs)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			msgs <- string(b)
		}
	}()
	c := f.nextOpen()
	ws.WriteMessage(websocket.TextMessage, []byte("slow"))
	await(t, h.started, "the slow callback")
	// Ten ping cycles: five times PingInterval+PongTimeout.
	for i := range 10 {
		await(t, pings, fmt.Sprint("ping ", i))
	}
	close(h.release)
	if got := await(t, msgs, "the reply"); got != "done" {
		t.Fatalf("got %q", got)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("again"))
	if got := await(t, msgs, "an echo"); got != "again" {
		t.Fatalf("got %q", got)
	}
	if err := c.Cause(); err != nil {
		t.Fatalf("the connection closed: %v", err)
	}
}

// The client leaving cancels the running callback's context at once, on
// every transport: a close frame, a DELETE, the in-memory Close.
func TestLeavingCancelsTheCallback(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		h := newSlowHandler()
		f := newFixture(t, tr, h.funcs(), realtime.Options{})
		p := f.dial(nil)
		c := f.nextOpen()
		sendAsync(t, tr, p, "slow")
		await(t, h.started, "the slow callback")
		closing := inBackground(func() { p.Close(4000, "bye") })
		await(t, h.cancelled, "the callback's context ending")
		if cl := f.nextClose(); realtime.CloseStatus(cl.err) != 4000 {
			t.Fatalf("cause %v, want the client's 4000", cl.err)
		}
		f.noMoreCloses(c)
		await(t, closing, "the client's close")
	})
}

// A dropped network, too: at once for WebSocket (the TCP connection
// ends), after the resume window for sessions, whose client may come back.
func TestDropCancelsTheCallback(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		h := newSlowHandler()
		f := newFixture(t, tr, h.funcs(), realtime.Options{ResumeWindow: 30 * time.Second})
		p := f.dial(nil)
		c := f.nextOpen()
		sendAsync(t, tr, p, "slow")
		await(t, h.started, "the slow callback")
		dropping := inBackground(p.Drop)
		var cl closed
		if tr.kind == realtime.SSE || tr.kind == realtime.LongPoll {
			cl = f.expire(30 * time.Second)
		} else {
			cl = f.nextClose()
		}
		await(t, h.cancelled, "the callback's context ending")
		if realtime.CloseStatus(cl.err) != realtime.CloseAbnormal {
			t.Fatalf("cause %v, want 1006", cl.err)
		}
		f.noMoreCloses(c)
		await(t, dropping, "the drop")
	})
}

// Sends from a goroutine of the connection's are written while a callback
// runs: each of 300 messages (more than the send queue holds) is sent only
// once the peer has the one before, so none of it would arrive if writes
// waited for the callback.
func TestSendsDuringSlowCallback(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		h := newSlowHandler()
		f := newFixture(t, tr, h.funcs(), realtime.Options{})
		p := f.dial(nil)
		c := f.nextOpen()
		sendAsync(t, tr, p, "slow")
		await(t, h.started, "the slow callback")
		got := make(chan struct{})
		c.Go(func(ctx context.Context) error {
			for i := range 300 {
				if err := c.SendText(strconv.Itoa(i)); err != nil {
					return err
				}
				select {
				case <-got:
				case <-ctx.Done():
					return nil
				}
			}
			return nil
		})
		for i := range 300 {
			if m := recv(t, p); m != strconv.Itoa(i) {
				t.Fatalf("got %q, want %d", m, i)
			}
			got <- struct{}{}
		}
		close(h.release)
		if m := recv(t, p); m != "done" {
			t.Fatalf("got %q", m)
		}
		if err := c.Cause(); err != nil {
			t.Fatalf("closed: %v", err)
		}
	})
}

// A callback streams its answer token by token, as an agent call does:
// each token reaches the peer while the callback still runs.
func TestCallbackStreamsTokens(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		got := make(chan struct{})
		f := newFixture(t, tr, realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			for i := range 300 {
				if err := c.SendText("token " + strconv.Itoa(i)); err != nil {
					return err
				}
				select {
				case <-got:
				case <-c.Context().Done():
					return nil
				}
			}
			return c.SendText("end")
		}}, realtime.Options{})
		p := f.dial(nil)
		f.nextOpen()
		sendAsync(t, tr, p, "ask")
		for i := range 300 {
			if m := recv(t, p); m != "token "+strconv.Itoa(i) {
				t.Fatalf("got %q, want token %d", m, i)
			}
			got <- struct{}{}
		}
		if m := recv(t, p); m != "end" {
			t.Fatalf("got %q", m)
		}
	})
}

// topicHandler joins or resumes a topic: "join <topic> <after>".
func topicHandler(ts *topics.Topics) realtime.Funcs {
	return realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var topic string
		var after uint64
		if _, err := fmt.Sscanf(m.Text(), "join %s %d", &topic, &after); err != nil {
			return err
		}
		return ts.Resume(c, topic, after)
	}}
}

func envelopeOf(t *testing.T, s string) topics.Envelope {
	t.Helper()
	var env topics.Envelope
	if err := json.Unmarshal([]byte(s), &env); err != nil {
		t.Fatalf("not an envelope: %q", s)
	}
	return env
}

// Catch-up is paced by the peer, never pushed into the send queue: 10,000
// messages of history (forty times the queue) arrive in order exactly
// once, then live ones; a client that missed 5,000 resumes the same way;
// with a history of 1,024, one that missed 5,000 gets a gap, then what is
// kept, then live messages. The connection is never closed.
func TestCatchUpLongerThanTheQueue(t *testing.T) {
	each(t, func(t *testing.T, tr transport) {
		cases := []struct {
			name            string
			history, posted int
			after           uint64
			gap             bool
		}{
			{"join with 10000 of history", 10000, 10000, 0, false},
			{"resume after missing 5000", 10000, 10000, 5000, false},
			{"missed 5000 of a 1024 history", 1024, 6000, 1000, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: tc.history}))
				for i := 1; i <= tc.posted; i++ {
					if _, err := ts.Publish(ctx(t), "big", realtime.Text(strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
				}
				f := newFixture(t, tr, topicHandler(ts), realtime.Options{})
				p := f.dial(nil)
				c := f.nextOpen()
				sendAsync(t, tr, p, fmt.Sprintf("join big %d", tc.after))
				next := tc.after + 1
				if tc.gap {
					env := envelopeOf(t, recv(t, p))
					if env.Gap == nil || env.Gap.After != tc.after {
						t.Fatalf("got %+v, want a gap after %d", env, tc.after)
					}
					next = uint64(tc.posted - tc.history + 1)
				}
				for ; next <= uint64(tc.posted); next++ {
					env := envelopeOf(t, recv(t, p))
					if env.Seq != next || env.Data == nil || *env.Data != strconv.FormatUint(next, 10) {
						t.Fatalf("got %+v, want seq %d", env, next)
					}
				}
				ts.Publish(ctx(t), "big", realtime.Text("live"))
				if env := envelopeOf(t, recv(t, p)); env.Seq != next || *env.Data != "live" {
					t.Fatalf("got %+v, want the live message %d", env, next)
				}
				if err := c.Cause(); err != nil {
					t.Fatalf("closed: %v", err)
				}
			})
		}
	})
}

// postSeq POSTs text with an explicit sequence number.
func postSeq(t *testing.T, p peer, seq uint64, text string) *http.Response {
	t.Helper()
	var s *session
	switch p := p.(type) {
	case *ssePeer:
		s = p.session
	case *lpPeer:
		s = p.session
	}
	req, _ := http.NewRequest(http.MethodPost, s.f.url, strings.NewReader(text))
	req.Header.Set(realtime.HeaderToken, s.token)
	req.Header.Set(realtime.HeaderSeq, strconv.FormatUint(seq, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// A POST-back is answered once its message is in the inbox, not when the
// handler is done with it; a full inbox answers 429 with Retry-After and
// accepts nothing, so the same seq is welcome later; every message is
// handled once, in order.
func TestPostAnsweredBeforeTheHandler(t *testing.T) {
	eachSession(t, func(t *testing.T, tr transport) {
		h := newSlowHandler()
		f := newFixture(t, tr, h.funcs(), realtime.Options{Inbox: 2})
		p := f.dial(nil)
		c := f.nextOpen()
		if r := postSeq(t, p, 1, "slow"); r.StatusCode != http.StatusNoContent {
			t.Fatalf("POST 1: %d while the handler runs, want 204", r.StatusCode)
		}
		await(t, h.started, "the slow callback")
		for seq := uint64(2); seq <= 3; seq++ {
			if r := postSeq(t, p, seq, strconv.FormatUint(seq, 10)); r.StatusCode != http.StatusNoContent {
				t.Fatalf("POST %d: %d, want 204", seq, r.StatusCode)
			}
		}
		r := postSeq(t, p, 4, "4")
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("POST 4 to a full inbox: %d %v, want 429 with Retry-After", r.StatusCode, r.Header)
		}
		close(h.release)
		for _, want := range []string{"2", "3"} {
			if got := await(t, h.started, "message "+want); got != want {
				t.Fatalf("handled %q, want %q", got, want)
			}
		}
		if r := postSeq(t, p, 4, "4"); r.StatusCode != http.StatusNoContent {
			t.Fatalf("POST 4 again: %d", r.StatusCode)
		}
		if r := postSeq(t, p, 3, "3"); r.StatusCode != http.StatusNoContent {
			t.Fatalf("a duplicate: %d, want 204", r.StatusCode)
		}
		if got := await(t, h.started, "message 4"); got != "4" {
			t.Fatalf("handled %q", got)
		}
		for _, want := range []string{"done", "2", "3", "4"} {
			if got := recv(t, p); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		select {
		case m := <-h.started:
			t.Fatalf("handled %q twice", m)
		default:
		}
		_ = c
	})
}

// A graceful close whose queued writes then fail ends the connection:
// Close runs and the peer is let go, instead of a half-closed zombie.
func TestCloseAfterFailedWrite(t *testing.T) {
	f := newFixture(t, transports[1], realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		big := realtime.Binary(make([]byte, 1<<20))
		for range 64 { // more than the socket buffers take
			c.Send(big)
		}
		return c.Close(realtime.CloseNormal, "done")
	}}, realtime.Options{Clock: wallClock{}, WriteTimeout: 100 * time.Millisecond, SendQueueBytes: 128 << 20})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := f.nextOpen()
	ws.WriteMessage(websocket.TextMessage, []byte("go")) // and never read
	cl := f.nextClose()
	if realtime.CloseStatus(cl.err) != realtime.CloseAbnormal || !strings.Contains(cl.err.Error(), "write timeout") {
		t.Fatalf("cause %v, want the write timeout", cl.err)
	}
	f.noMoreCloses(c)
}
