package websocket_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// received is what a readProbe handler got.
type received struct {
	typ  realtime.MessageType
	size int
	utf8 bool
}

// readProbe serves a route that records the size of each message it
// receives (echoing the small ones) and the cause of each close.
type readProbe struct {
	url    string
	msgs   chan received
	closed chan error
}

func newReadProbe(t *testing.T, limit int64, compression bool) *readProbe {
	t.Helper()
	p := &readProbe{msgs: make(chan received, 16), closed: make(chan error, 1)}
	rt := realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			p.msgs <- received{m.Type, len(m.Data), utf8.Valid(m.Data)}
			if len(m.Data) <= 64 {
				return c.Send(m)
			}
			return c.SendText(fmt.Sprint(len(m.Data)))
		},
		OnClose: func(c *realtime.Conn, err error) { p.closed <- err },
	}, lcOpts(realtime.Options{
		ReadLimit:  limit,
		Transports: []realtime.Transport{rtws.New(rtws.Options{Compression: compression})},
	}))
	p.url = lcServe(t, rt, nil)
	return p
}

// refused asserts that the peer got a close frame with code and that the
// handler's Close saw the same code and a cause that wraps cause (when
// not nil), without any message reaching the handler.
func (p *readProbe) refused(t *testing.T, c *rawConn, code int, cause error) {
	t.Helper()
	msgs, got, _, err := c.readClose()
	if err != nil || got != code {
		t.Fatalf("peer read %d (%v) after %d messages, want close %d", got, err, len(msgs), code)
	}
	ce := lcAwait(t, p.closed, "the handler's Close")
	if realtime.CloseStatus(ce) != code || cause != nil && !errors.Is(ce, cause) {
		t.Fatalf("handler's Close: %v, want code %d and cause %v", ce, code, cause)
	}
	select {
	case m := <-p.msgs:
		t.Fatalf("the handler received a %d-byte message", m.size)
	default:
	}
}

// echoed asserts that the handler received one message of size n and the
// peer its answer.
func (p *readProbe) echoed(t *testing.T, c *rawConn, typ realtime.MessageType, n int) {
	t.Helper()
	m := lcAwait(t, p.msgs, "the message")
	if m.typ != typ || m.size != n {
		t.Fatalf("handler received %v of %d bytes, want %v of %d", m.typ, m.size, typ, n)
	}
	if _, err := c.readData(); err != nil {
		t.Fatalf("answer: %v", err)
	}
}

// zeros are what a deflate bomb inflates to.
func zeros(n int) []byte { return make([]byte, n) }

// A deflate bomb: about 32 KiB on the wire that inflates to 32 MiB. The
// read limit counts inflated bytes, so it closes with 1009 before the
// message is assembled, whether it comes in one frame or in many.
func TestReadLimitCountsInflatedBytes(t *testing.T) {
	const limit = 64 << 10
	bomb := zeros(32 << 20)
	for _, fragment := range []int{0, 1000, 7} {
		t.Run(fmt.Sprintf("fragment=%d", fragment), func(t *testing.T) {
			p := newReadProbe(t, limit, true)
			c := rawDial(t, p.url, true)
			if err := c.message(opBinary, bomb, true, fragment); err != nil {
				// The server may close before the last frames are written.
				t.Logf("writing the bomb: %v", err)
			}
			if c.written >= limit {
				t.Fatalf("the bomb took %d bytes on the wire, not a bomb for a %d-byte limit", c.written, limit)
			}
			p.refused(t, c, websocket.CloseMessageTooBig, realtime.ErrReadLimit)
		})
	}
}

// The limit is on the message, exactly: ReadLimit bytes pass, one more
// closes with 1009, with compression and without, in one frame and in
// fragments, even when deflate makes an incompressible message larger on
// the wire than the limit.
func TestReadLimitBoundary(t *testing.T) {
	const limit = 4 << 10
	random := make([]byte, limit+1)
	rand.Read(random)
	for _, compress := range []bool{false, true} {
		for _, fragment := range []int{0, 100} {
			for name, body := range map[string][]byte{"zeros": zeros(limit + 1), "random": random} {
				t.Run(fmt.Sprintf("compress=%v/fragment=%d/%s", compress, fragment, name), func(t *testing.T) {
					p := newReadProbe(t, limit, true)
					c := rawDial(t, p.url, compress)
					if err := c.message(opBinary, body[:limit], compress, fragment); err != nil {
						t.Fatal(err)
					}
					p.echoed(t, c, realtime.BinaryMessage, limit)
					c.message(opBinary, body, compress, fragment)
					p.refused(t, c, websocket.CloseMessageTooBig, realtime.ErrReadLimit)
				})
			}
		}
	}
}

// Without compression on the route, fragments add up to the limit too.
func TestReadLimitFragmentsWithoutCompression(t *testing.T) {
	p := newReadProbe(t, 1000, false)
	c := rawDial(t, p.url, false)
	c.message(opText, bytes.Repeat([]byte("x"), 1001), false, 10)
	p.refused(t, c, websocket.CloseMessageTooBig, realtime.ErrReadLimit)
}

// A text message must be UTF-8 (RFC 6455 section 8.1): otherwise the
// connection closes with 1007 and the handler never sees it, compressed
// or not, whole or in fragments. A rune split across fragments is fine,
// and binary messages may hold any bytes.
func TestInvalidUTF8Closes1007(t *testing.T) {
	for _, compress := range []bool{false, true} {
		for _, tc := range []struct {
			name     string
			data     string
			fragment int
		}{
			{"lone continuation byte", "ok\x80", 0},
			{"truncated rune", "caf\xc3", 0},
			{"surrogate half", "\xed\xa0\x80", 0},
			{"overlong", "\xc0\xaf", 0},
			{"0xff in a later fragment", "hello\xffworld", 3},
		} {
			t.Run(fmt.Sprintf("compress=%v/%s", compress, tc.name), func(t *testing.T) {
				p := newReadProbe(t, 0, true)
				c := rawDial(t, p.url, compress)
				// The same bytes as binary are delivered as they are.
				c.message(opBinary, []byte(tc.data), compress, tc.fragment)
				p.echoed(t, c, realtime.BinaryMessage, len(tc.data))
				// Valid text with a rune cut in two by the fragments.
				euro := "price: \u20ac"
				c.message(opText, []byte(euro), compress, len(euro)-1)
				if m := lcAwait(t, p.msgs, "the split rune"); !m.utf8 || m.size != len(euro) {
					t.Fatalf("split rune: %+v", m)
				}
				c.readData()

				c.message(opText, []byte(tc.data), compress, tc.fragment)
				_, code, reason, err := c.readClose()
				if err != nil || code != websocket.CloseInvalidFramePayloadData || reason != "invalid UTF-8" {
					t.Fatalf("peer read close %d %q (%v), want 1007 \"invalid UTF-8\"", code, reason, err)
				}
				ce := lcAwait(t, p.closed, "the handler's Close")
				var rce *realtime.CloseError
				if !errors.As(ce, &rce) || rce.Code != realtime.CloseInvalidData || !strings.Contains(rce.Reason, "UTF-8") {
					t.Fatalf("handler's Close: %v", ce)
				}
				select {
				case m := <-p.msgs:
					t.Fatalf("the handler received %+v", m)
				default:
				}
			})
		}
	}
}

// gorilla's own client, which real Go peers use, meets the same limits:
// a compressed message over the limit closes with 1009, invalid text
// with 1007.
func TestLimitsWithGorillaClient(t *testing.T) {
	p := newReadProbe(t, 64<<10, true)
	d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: lcWait}
	ws, _, err := d.Dial(p.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	lcCloseFrame(t, ws, websocket.CloseMessageTooBig, "")
	if ce := lcAwait(t, p.closed, "Close"); !errors.Is(ce, realtime.ErrReadLimit) {
		t.Fatalf("cause %v", ce)
	}

	ws2, _, err := d.Dial(p.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	ws2.WriteMessage(websocket.TextMessage, []byte("bad \xff text"))
	lcCloseFrame(t, ws2, websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
	if ce := lcAwait(t, p.closed, "Close"); realtime.CloseStatus(ce) != realtime.CloseInvalidData {
		t.Fatalf("cause %v", ce)
	}
}
