package rtclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
)

func TestEcho(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, nil)
			ctx := testContext(t)
			c := dial(t, f.ts.URL, fastOptions(k))
			if got := c.Transport(); got != k {
				t.Fatalf("Transport() = %v, want %v", got, k)
			}
			if c.State() != rtclient.Open {
				t.Fatalf("State() = %v", c.State())
			}
			if err := c.SendText(ctx, "hello\nworld"); err != nil {
				t.Fatal(err)
			}
			if got := receiveText(t, ctx, c); got != "hello\nworld" {
				t.Fatalf("got %q", got)
			}
			bin := []byte{0, 1, 2, 0xff, '\n', 0xfe}
			if err := c.SendBinary(ctx, bin); err != nil {
				t.Fatal(err)
			}
			m, err := c.Receive(ctx)
			if err != nil || m.Type != realtime.BinaryMessage || !bytes.Equal(m.Data, bin) {
				t.Fatalf("binary: %v %v %v", m.Type, m.Data, err)
			}
			if err := c.SendJSON(ctx, map[string]int{"n": 1}); err != nil {
				t.Fatal(err)
			}
			if got := receiveText(t, ctx, c); got != `{"n":1}` {
				t.Fatalf("got %q", got)
			}
			if err := c.Close(4000, "done"); err != nil {
				t.Fatal(err)
			}
			if ce := closeCode(t, recv(t, f.rec.closes)); ce.Code != 4000 || ce.Reason != "done" {
				t.Fatalf("server saw %v", ce)
			}
			_, err = c.Receive(ctx)
			if ce := closeCode(t, err); ce.Code != 4000 {
				t.Fatalf("Receive after Close: %v", ce)
			}
			if err := c.Close(realtime.CloseNormal, ""); !errors.Is(err, realtime.ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
			if err := c.SendText(ctx, "late"); !errors.Is(err, realtime.ErrClosed) {
				t.Fatalf("Send after Close: %v", err)
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("Done not closed after Close")
			}
		})
	}
}

func TestFallbackRefusedUpgrade(t *testing.T) {
	f := newFixture(t, nil)
	f.proxy.refuseWS.Store(true)
	ctx := testContext(t)
	start := time.Now()
	c := dial(t, f.ts.URL, nil)
	t.Logf("WebSocket refused with 403: settled on %v in %v", c.Transport(), time.Since(start))
	if c.Transport() != realtime.SSE {
		t.Fatalf("Transport() = %v, want sse", c.Transport())
	}
	c.SendText(ctx, "hi")
	if got := receiveText(t, ctx, c); got != "hi" {
		t.Fatalf("got %q", got)
	}
}

func TestFallbackBufferedStream(t *testing.T) {
	f := newFixture(t, nil)
	f.proxy.refuseWS.Store(true)
	f.proxy.buffer.Store(true)
	ctx := testContext(t)
	o := fastOptions()
	o.FirstEventTimeout = 300 * time.Millisecond
	start := time.Now()
	c := dial(t, f.ts.URL, o)
	t.Logf("WebSocket refused, SSE buffered (FirstEventTimeout %v): settled on %v in %v", o.FirstEventTimeout, c.Transport(), time.Since(start))
	if c.Transport() != realtime.LongPoll {
		t.Fatalf("Transport() = %v, want longpoll", c.Transport())
	}
	c.SendText(ctx, "hi")
	if got := receiveText(t, ctx, c); got != "hi" {
		t.Fatalf("got %q", got)
	}
}

func TestFallbackSilentUpgrade(t *testing.T) {
	f := newFixture(t, nil)
	// A listener that accepts and never answers: the upgrade is silent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	// The WebSocket dialer takes its dial function from the client's
	// transport; without negotiation its first dial is the upgrade.
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		to := f.ts.Listener.Addr().String()
		if dials.Add(1) == 1 {
			to = ln.Addr().String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}}
	defer tr.CloseIdleConnections()
	o := fastOptions()
	o.NoNegotiate = true
	o.UpgradeTimeout = 200 * time.Millisecond
	o.HTTPClient = &http.Client{Transport: tr}
	start := time.Now()
	c := dial(t, f.ts.URL, o)
	t.Logf("WebSocket silent (UpgradeTimeout %v): settled on %v in %v", o.UpgradeTimeout, c.Transport(), time.Since(start))
	if c.Transport() != realtime.SSE {
		t.Fatalf("Transport() = %v, want sse", c.Transport())
	}
	c.Close(realtime.CloseNormal, "")
}

func TestNegotiationSkipsUnlistedTransports(t *testing.T) {
	f := newFixture(t, &realtime.Options{Transports: []realtime.Transport{allServers[2]}})
	c := dial(t, f.ts.URL, nil)
	if c.Transport() != realtime.LongPoll {
		t.Fatalf("Transport() = %v", c.Transport())
	}
	for _, r := range f.proxy.requests() {
		if r.upgrade || strings.Contains(r.url, "transport=sse") {
			t.Fatalf("tried a transport the route does not list: %+v", r)
		}
	}
}

// TestResume drops the client's TCP connections in the middle of a stream:
// what the server sent meanwhile arrives exactly once and in order, what
// the client sent meanwhile reaches the handler, and the server's
// connection never closed.
func TestResume(t *testing.T) {
	for _, k := range []realtime.Kind{realtime.SSE, realtime.LongPoll} {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, nil)
			ctx := testContext(t)
			st := make(states, 64)
			o := fastOptions(k)
			o.OnState = st.on
			c := dial(t, f.ts.URL, o)
			sc := recv(t, f.rec.opens)
			for i := 1; i <= 3; i++ {
				sc.SendText(fmt.Sprint(i))
			}
			for i := 1; i <= 3; i++ {
				if got := receiveText(t, ctx, c); got != fmt.Sprint(i) {
					t.Fatalf("got %q, want %d", got, i)
				}
			}
			for round := 0; round < 2; round++ {
				f.drop()
				for i := 4 + 10*round; i < 14+10*round; i++ {
					sc.SendText(fmt.Sprint(i))
				}
				if err := c.SendText(ctx, fmt.Sprintf("up%d", round)); err != nil {
					t.Fatalf("Send while reconnecting: %v", err)
				}
				if k == realtime.SSE {
					// A poll may be between requests when the network
					// drops, and never notice.
					st.wait(t, rtclient.Reconnecting)
					st.wait(t, rtclient.Open)
				}
			}
			sc.SendText("end")
			// A Send queued while reconnecting returns at once: its echo
			// may come after "end".
			want, echo, end := 4, 0, false
			for !end || echo < 2 {
				got := receiveText(t, ctx, c)
				if got == "end" {
					if want != 24 {
						t.Fatalf("end after %d", want-1)
					}
					end = true
					continue
				}
				if strings.HasPrefix(got, "up") {
					if got != fmt.Sprintf("up%d", echo) {
						t.Fatalf("echo %q, want up%d", got, echo)
					}
					echo++
					continue
				}
				if got != fmt.Sprint(want) {
					t.Fatalf("got %q, want %d", got, want)
				}
				want++
			}
			if want != 24 || echo != 2 {
				t.Fatalf("got up to %d and %d echoes", want-1, echo)
			}
			select {
			case err := <-f.rec.closes:
				t.Fatalf("the server connection closed: %v", err)
			case c2 := <-f.rec.opens:
				t.Fatalf("a second server connection opened: %v", c2.ID())
			default:
			}
			if c.Transport() != k {
				t.Fatalf("Transport() = %v", c.Transport())
			}
		})
	}
}

// TestResumeOnOtherTransport: the SSE stream drops and the network now
// buffers streams: the client resumes the same session by long-polling.
func TestResumeOnOtherTransport(t *testing.T) {
	f := newFixture(t, nil)
	ctx := testContext(t)
	st := make(states, 64)
	o := fastOptions(realtime.SSE, realtime.LongPoll)
	o.FirstEventTimeout = 200 * time.Millisecond
	o.OnState = st.on
	c := dial(t, f.ts.URL, o)
	sc := recv(t, f.rec.opens)
	sc.SendText("1")
	if got := receiveText(t, ctx, c); got != "1" {
		t.Fatalf("got %q", got)
	}
	f.proxy.buffer.Store(true)
	f.drop()
	for i := 2; i <= 5; i++ {
		sc.SendText(fmt.Sprint(i))
	}
	start := time.Now()
	for i := 2; i <= 5; i++ {
		if got := receiveText(t, ctx, c); got != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", got, i)
		}
	}
	t.Logf("resumed on %v in %v", c.Transport(), time.Since(start))
	if c.Transport() != realtime.LongPoll {
		t.Fatalf("Transport() = %v, want longpoll", c.Transport())
	}
	c.SendText(ctx, "echo")
	if got := receiveText(t, ctx, c); got != "echo" {
		t.Fatalf("got %q", got)
	}
	select {
	case err := <-f.rec.closes:
		t.Fatalf("the server connection closed: %v", err)
	default:
	}
	var resumed bool
	for _, r := range f.proxy.requests() {
		resumed = resumed || r.lastEventID != ""
	}
	if !resumed {
		t.Fatal("no SSE resume was tried")
	}
}

// TestGapBacklog: the client comes back after the server's backlog no
// longer holds what it missed: Receive says how far it got, then goes on.
func TestGapBacklog(t *testing.T) {
	for _, k := range []realtime.Kind{realtime.SSE, realtime.LongPoll} {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, &realtime.Options{ResumeBuffer: 2, Overflow: realtime.OverflowDropOldest})
			ctx := testContext(t)
			st := make(states, 64)
			o := fastOptions(k)
			o.OnState = st.on
			c := dial(t, f.ts.URL, o)
			sc := recv(t, f.rec.opens)
			sc.SendText("1")
			if got := receiveText(t, ctx, c); got != "1" {
				t.Fatalf("got %q", got)
			}
			f.proxy.refuse.Store(true)
			f.drop()
			for i := 2; i <= 6; i++ {
				sc.SendText(fmt.Sprint(i))
			}
			// A poll between requests notices the refusal at its next one.
			st.wait(t, rtclient.Reconnecting)
			f.proxy.refuse.Store(false)
			_, err := c.Receive(ctx)
			var gap *rtclient.GapError
			if !errors.As(err, &gap) || gap.NewConnection || gap.After != 1 {
				t.Fatalf("Receive: %v, want a gap after 1", err)
			}
			for i := 5; i <= 6; i++ {
				if got := receiveText(t, ctx, c); got != fmt.Sprint(i) {
					t.Fatalf("got %q, want %d", got, i)
				}
			}
		})
	}
}

// TestSessionExpired: the client comes back after the session's resume
// window: it gets a new session and Receive says so.
func TestSessionExpired(t *testing.T) {
	for _, k := range []realtime.Kind{realtime.SSE, realtime.LongPoll} {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, &realtime.Options{ResumeWindow: 50 * time.Millisecond})
			ctx := testContext(t)
			c := dial(t, f.ts.URL, fastOptions(k))
			recv(t, f.rec.opens)
			f.proxy.refuse.Store(true)
			f.drop()
			if ce := closeCode(t, recv(t, f.rec.closes)); !errors.Is(ce, realtime.ErrResumeTimeout) {
				t.Fatalf("server closed with %v", ce)
			}
			f.proxy.refuse.Store(false)
			_, err := c.Receive(ctx)
			var gap *rtclient.GapError
			if !errors.As(err, &gap) || !gap.NewConnection {
				t.Fatalf("Receive: %v, want a new-connection gap", err)
			}
			t.Logf("gap: %v", gap)
			recv(t, f.rec.opens)
			c.SendText(ctx, "new")
			if got := receiveText(t, ctx, c); got != "new" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// TestWebSocketReconnect: a WebSocket reconnect is a new server
// connection, and Receive says so.
func TestWebSocketReconnect(t *testing.T) {
	f := newFixture(t, nil)
	ctx := testContext(t)
	st := make(states, 64)
	o := fastOptions(realtime.WebSocket)
	o.OnState = st.on
	c := dial(t, f.ts.URL, o)
	recv(t, f.rec.opens)
	f.drop()
	if err := c.SendText(ctx, "queued"); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("Send during the drop: %v", err) // written before the client noticed: lost with the connection
	}
	sc := st.wait(t, rtclient.Reconnecting)
	t.Logf("reconnecting: %v", sc.err)
	st.wait(t, rtclient.Open)
	if ce := closeCode(t, recv(t, f.rec.closes)); ce.Code != realtime.CloseAbnormal {
		t.Fatalf("the first server connection closed with %v", ce)
	}
	recv(t, f.rec.opens)
	_, err := c.Receive(ctx)
	var gap *rtclient.GapError
	if !errors.As(err, &gap) || !gap.NewConnection {
		t.Fatalf("Receive: %v, want a new-connection gap", err)
	}
	c.SendText(ctx, "after")
	for {
		got := receiveText(t, ctx, c)
		if got == "after" {
			break
		}
		if got != "queued" {
			t.Fatalf("got %q", got)
		}
	}
}

func TestServerCloseIsFinal(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, nil)
			ctx := testContext(t)
			c := dial(t, f.ts.URL, fastOptions(k))
			recv(t, f.rec.opens)
			c.SendText(ctx, "bye")
			_, err := c.Receive(ctx)
			if ce := closeCode(t, err); ce.Code != 4001 || ce.Reason != "bye" {
				t.Fatalf("Receive: %v", ce)
			}
			<-c.Done()
			if c.State() != rtclient.Closed {
				t.Fatalf("State() = %v", c.State())
			}
			select {
			case <-f.rec.opens:
				t.Fatal("the client reconnected")
			default:
			}
		})
	}
}

// TestShutdownReconnects: a server shutdown (1001) makes the client
// reconnect, here to a new server on the same address.
func TestShutdownReconnects(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			ctx := testContext(t)
			rec := newRecorder()
			o := &realtime.Options{Transports: allServers}
			start := func(ln net.Listener) (*realtime.Route, *httptest.Server) {
				rt := realtime.NewRoute(rec.handler(), o)
				ts := httptest.NewUnstartedServer(rt)
				ts.Listener.Close()
				ts.Listener = ln
				ts.Start()
				return rt, ts
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			rt1, ts1 := start(ln)
			st := make(states, 64)
			co := fastOptions(k)
			co.OnState = st.on
			c := dial(t, ts1.URL, co)
			recv(t, rec.opens)

			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			rt1.Shutdown(sctx)
			cancel()
			sc := st.wait(t, rtclient.Reconnecting)
			if realtime.CloseStatus(sc.err) != realtime.CloseGoingAway {
				t.Fatalf("Reconnecting because of %v, want 1001", sc.err)
			}
			ts1.Close()
			ln2, err := net.Listen("tcp", ln.Addr().String())
			if err != nil {
				t.Skipf("cannot listen on the same address again: %v", err)
			}
			rt2, ts2 := start(ln2)
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				rt2.Shutdown(sctx)
				ts2.Close()
			}()
			st.wait(t, rtclient.Open)
			recv(t, rec.opens)
			_, err = c.Receive(ctx)
			var gap *rtclient.GapError
			if !errors.As(err, &gap) || !gap.NewConnection || !errors.Is(err, rtclient.ErrGap) {
				t.Fatalf("Receive after reconnect: %v, want a new-connection gap", err)
			}
			c.SendText(ctx, "again")
			if got := receiveText(t, ctx, c); got != "again" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	const secret = "s3cret-token"
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			f := newFixture(t, nil)
			ctx := testContext(t)
			o := fastOptions(k)
			o.Token = secret
			o.Header = http.Header{"X-Client": {"test"}}
			c := dial(t, f.ts.URL, o)
			if got := recv(t, f.rec.tokens); got != secret {
				t.Fatalf("the handler's request carried %q", got)
			}
			c.SendText(ctx, "x")
			receiveText(t, ctx, c)
			c.Close(realtime.CloseNormal, "")
			for _, r := range f.proxy.requests() {
				if r.bearer != secret {
					t.Errorf("%s %s carried bearer %q", r.method, r.url, r.bearer)
				}
				if strings.Contains(r.url, secret) {
					t.Errorf("the token is in a URL: %s", r.url)
				}
			}
		})
	}
}

// TestKeepalive: a stream that goes silent past pingInterval+pongTimeout
// is taken for dead, and the client resumes; here the server no longer
// knows the session, starts a new one, and Receive says so.
func TestKeepalive(t *testing.T) {
	resumed := make(chan string, 4)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") != "sse" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"transports":[{"transport":"sse","url":"/?transport=sse"}],"pingInterval":100,"pongTimeout":100}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			resumed <- id
			fmt.Fprint(w, "event: gap\ndata: {\"reason\":\"unknown session\"}\n\n"+
				"id: TOK2.0\nevent: session\ndata: {\"token\":\"TOK2\"}\n\nid: TOK2.1\ndata: two\n\n")
		} else {
			fmt.Fprint(w, "id: TOK.0\nevent: session\ndata: {\"token\":\"TOK\"}\n\nid: TOK.1\ndata: one\n\n")
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent: no pings
	}))
	defer ts.Close()
	ctx := testContext(t)
	c := dial(t, ts.URL, fastOptions())
	if got := receiveText(t, ctx, c); got != "one" {
		t.Fatalf("got %q", got)
	}
	if id := recv(t, resumed); id != "TOK.1" {
		t.Fatalf("resumed with Last-Event-ID %q", id)
	}
	_, err := c.Receive(ctx)
	var gap *rtclient.GapError
	if !errors.As(err, &gap) || !gap.NewConnection || gap.Reason != "unknown session" {
		t.Fatalf("Receive: %v, want a new-connection gap", err)
	}
	if got := receiveText(t, ctx, c); got != "two" {
		t.Fatalf("got %q", got)
	}
	if id := recv(t, resumed); id != "TOK2.1" {
		t.Fatalf("resumed with Last-Event-ID %q", id)
	}
}

func TestSendQueueBound(t *testing.T) {
	f := newFixture(t, nil)
	ctx := testContext(t)
	st := make(states, 64)
	o := fastOptions(realtime.WebSocket)
	o.SendQueue = 2
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // stays reconnecting
	o.OnState = st.on
	c := dial(t, f.ts.URL, o)
	f.drop()
	st.wait(t, rtclient.Reconnecting)
	for i := 0; i < 2; i++ {
		if err := c.SendText(ctx, "q"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendText(ctx, "q"); !errors.Is(err, rtclient.ErrSendQueueFull) {
		t.Fatalf("third Send: %v", err)
	}
	c.Close(realtime.CloseNormal, "")
	_, err := c.Receive(ctx)
	if ce := closeCode(t, err); ce.Code != realtime.CloseNormal {
		t.Fatalf("Receive: %v", ce)
	}
}

func TestTooLarge(t *testing.T) {
	f := newFixture(t, &realtime.Options{ReadLimit: 16})
	ctx := testContext(t)
	c := dial(t, f.ts.URL, nil)
	if err := c.SendText(ctx, strings.Repeat("x", 17)); !errors.Is(err, rtclient.ErrTooLarge) {
		t.Fatalf("Send: %v", err)
	}
}
