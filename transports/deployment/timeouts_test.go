package deployment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// wait bounds every wait in these tests; reaching it is a failure.
const wait = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// ticker is a handler that sends "tick N" every interval and echoes what
// it receives.
func ticker(interval time.Duration) realtime.Funcs {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			n := 0
			c.Every(interval, func() { n++; c.SendText(fmt.Sprint("tick ", n)) })
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
	}
}

// kinds are the transports of a route, each with its client's kind.
var kinds = []struct {
	kind   realtime.Kind
	server func() realtime.Transport
}{
	{realtime.WebSocket, func() realtime.Transport { return rtws.New(rtws.Options{}) }},
	{realtime.SSE, func() realtime.Transport { return sse.New(sse.Options{}) }},
	// A poll held longer than the server's timeouts.
	{realtime.LongPoll, func() realtime.Transport { return longpoll.New(longpoll.Options{Hold: 500 * time.Millisecond}) }},
}

// dial connects over kind only and fails the test on any reconnect: the
// connection must stay the one it opened.
func dial(t *testing.T, url string, kind realtime.Kind, o rtclient.Options) *rtclient.Conn {
	t.Helper()
	o.Transports = []realtime.Kind{kind}
	o.OnState = func(s rtclient.State, _ realtime.Kind, err error) {
		if s == rtclient.Reconnecting {
			t.Errorf("%s reconnected: %v", kind, err)
		}
	}
	c, err := rtclient.Dial(ctxT(t), url, &o)
	if err != nil {
		t.Fatalf("dial %s: %v", kind, err)
	}
	t.Cleanup(func() { c.Close(realtime.CloseNormal, "") })
	if c.Transport() != kind {
		t.Fatalf("connected over %s, want %s", c.Transport(), kind)
	}
	return c
}

// live asserts that c echoes a message and receives n ticks in order.
func live(t *testing.T, c *rtclient.Conn, n int) {
	t.Helper()
	ctx := ctxT(t)
	if err := c.SendText(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	ticks, echoed := 0, false
	for ticks < n || !echoed {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d ticks: %v", ticks, err)
		}
		switch s := m.Text(); {
		case s == "echo":
			echoed = true
		case s == fmt.Sprint("tick ", ticks+1):
			ticks++
		default:
			t.Fatalf("got %q after %d ticks", s, ticks)
		}
	}
}

// The README's timeouts, and shorter ones, do not cut rtkit's
// connections: net/http lifts ReadTimeout once a request's body is read,
// gorilla clears the deadlines of an upgraded connection, and the SSE and
// long-poll transports set their own write deadline before each write, so
// a stream or a held poll outlives the server's WriteTimeout. Each
// connection here lives seven times the longest timeout.
func TestServerTimeoutsSpareConnections(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			rt := realtime.NewRoute(ticker(50*time.Millisecond), &realtime.Options{Transports: []realtime.Transport{k.server()}})
			srv := httptest.NewUnstartedServer(rt)
			srv.Config.ReadHeaderTimeout = timeout
			srv.Config.ReadTimeout = timeout
			srv.Config.WriteTimeout = timeout
			srv.Config.IdleTimeout = timeout
			srv.Start()
			t.Cleanup(func() {
				rt.Shutdown(context.Background())
				srv.Close()
			})
			live(t, dial(t, srv.URL, k.kind, rtclient.Options{}), 28)
		})
	}
}

// A client that trickles an upgrade request is not rtkit's to time out:
// the route sees no request before its headers end. The http.Server's
// ReadHeaderTimeout cuts it off; a bare http.Server holds it.
func TestReadHeaderTimeoutCutsSlowUpgrade(t *testing.T) {
	for _, timeout := range []time.Duration{300 * time.Millisecond, 0} {
		t.Run(fmt.Sprint("ReadHeaderTimeout=", timeout), func(t *testing.T) {
			rt := realtime.NewRoute(ticker(time.Hour), &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{})}})
			srv := httptest.NewUnstartedServer(rt)
			srv.Config.ReadHeaderTimeout = timeout
			srv.Start()
			t.Cleanup(func() {
				rt.Shutdown(context.Background())
				srv.Close()
			})
			addr := strings.TrimPrefix(srv.URL, "http://")
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
			hold := 2 * time.Second // the bare server must still hold it then
			if timeout > 0 {
				hold = wait
			}
			conn.SetReadDeadline(time.Now().Add(hold))
			_, err = io.ReadAll(conn)
			var ne net.Error
			held := errors.As(err, &ne) && ne.Timeout()
			if held != (timeout == 0) {
				t.Fatalf("held for %v: %v; want held only without ReadHeaderTimeout", hold, held)
			}
			if rt.Len() != 0 {
				t.Fatalf("the route holds %d connections", rt.Len())
			}
		})
	}
}
