package websocket_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// fuzzRoute serves h over WebSocket, with compression, on loopback for
// the whole fuzz run, and reports each connection and its Close cause.
type fuzzRoute struct {
	url    string
	opened chan *realtime.Conn
	closed chan error
	msgs   chan realtime.Message
}

func newFuzzRoute(f *testing.F, limit int64) *fuzzRoute {
	fr := &fuzzRoute{opened: make(chan *realtime.Conn, 1), closed: make(chan error, 1), msgs: make(chan realtime.Message, 1)}
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { fr.opened <- c; return nil },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			fr.msgs <- m
			return c.Send(m)
		},
		OnClose: func(c *realtime.Conn, err error) { fr.closed <- err },
	}, lcOpts(realtime.Options{
		ReadLimit:    limit,
		PingInterval: -1,
		Transports:   []realtime.Transport{rtws.New(rtws.Options{Compression: true})},
	}))
	srv := httptest.NewServer(rt)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), lcWait)
		defer cancel()
		rt.Shutdown(ctx)
		srv.Close()
	})
	fr.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return fr
}

// dial opens a connection and returns it with the server's side.
func (fr *fuzzRoute) dial(t *testing.T, deflate bool) (*rawConn, *realtime.Conn) {
	t.Helper()
	c, err := tryRawDial(fr.url, deflate)
	if err != nil {
		t.Fatal(err)
	}
	return c, lcAwait(t, fr.opened, "Open")
}

// end waits for the connection's Close and its end, and returns the
// cause.
func (fr *fuzzRoute) end(t *testing.T, c *rawConn, sc *realtime.Conn) *realtime.CloseError {
	t.Helper()
	cause := lcAwait(t, fr.closed, "the handler's Close")
	lcAwait(t, sc.Done(), "the connection's end")
	c.conn.Close()
	ce, ok := cause.(*realtime.CloseError)
	if !ok {
		t.Fatalf("cause %T %v", cause, cause)
	}
	if len(ce.Reason) > 123 || !utf8.ValidString(ce.Reason) {
		t.Fatalf("cause reason %q", ce.Reason)
	}
	return ce
}

// receivedCloseCode reports whether a peer may send code (RFC 6455
// section 7.4, as gorilla checks it: 1014, registered later, is not
// among them).
func receivedCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1013:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}

// FuzzClosePayload sends the server a close frame with any payload and
// checks how the connection ends. A valid one (a code a peer may send,
// UTF-8 reason) reaches the handler's Close as it is and is echoed; an
// empty one is 1005; anything else (a reserved code, bad UTF-8, over 125
// bytes) is a protocol error: the peer gets 1002 and the handler never
// sees the bogus code. No panic, and the cause's reason always fits a
// close frame.
func FuzzClosePayload(f *testing.F) {
	for _, code := range []int{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535} {
		f.Add(binary.BigEndian.AppendUint16(nil, uint16(code)), []byte{})
		f.Add(binary.BigEndian.AppendUint16(nil, uint16(code)), []byte("bye"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x03}, []byte{})
	f.Add([]byte{0x03, 0xe8}, []byte("\xff"))
	f.Add([]byte{0x03, 0xe8}, []byte(strings.Repeat("r", 123)))
	f.Add([]byte{0x03, 0xe8}, []byte(strings.Repeat("r", 124)))
	fr := newFuzzRoute(f, 0)
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		payload := append(head, tail...)
		if len(payload) > 300 {
			payload = payload[:300]
		}
		c, sc := fr.dial(t, false)
		if err := c.frame(true, false, opClose, payload); err != nil {
			t.Fatal(err)
		}
		_, got, _, err := c.readClose()
		if err != nil {
			t.Fatalf("payload %x: %v", payload, err)
		}
		ce := fr.end(t, c, sc)
		switch {
		case len(payload) > 125:
			if got != 1002 || !protocolError(ce) {
				t.Fatalf("%d-byte payload: peer got %d, handler %v", len(payload), got, ce)
			}
		case len(payload) < 2:
			// gorilla takes a 1-byte payload as none.
			if ce.Code != realtime.CloseNoStatus || got != 1005 {
				t.Fatalf("payload %x: peer got %d, handler %v", payload, got, ce)
			}
		default:
			code, reason := int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			if receivedCloseCode(code) && utf8.ValidString(reason) {
				if ce.Code != code || ce.Reason != reason || got != code {
					t.Fatalf("close %d %q: peer got %d, handler %v", code, reason, got, ce)
				}
			} else if got != 1002 || !protocolError(ce) {
				t.Fatalf("invalid close %d %q: peer got %d, handler %v", code, reason, got, ce)
			}
		}
	})
}

// FuzzReadMessage sends one data message, text or binary, compressed or
// not, in any fragmentation, and checks the reader: a message of at most
// ReadLimit bytes (inflated) that is binary or UTF-8 reaches the handler
// byte for byte; a longer one closes with 1009, invalid text with 1007,
// and neither reaches the handler.
func FuzzReadMessage(f *testing.F) {
	const limit = 512
	f.Add([]byte("hello"), true, false, uint16(0))
	f.Add([]byte("hello"), true, true, uint16(2))
	f.Add([]byte("caf\xc3"), true, false, uint16(0))
	f.Add([]byte("\u20ac"), true, true, uint16(1))
	f.Add([]byte("\xff\xfe"), false, true, uint16(1))
	f.Add(make([]byte, limit), false, true, uint16(0))
	f.Add(make([]byte, limit+1), false, true, uint16(7))
	f.Add(bytes.Repeat([]byte("a"), 4<<10), true, true, uint16(3))
	fr := newFuzzRoute(f, limit)
	f.Fuzz(func(t *testing.T, data []byte, text, compress bool, fragment uint16) {
		if len(data) > 8<<10 {
			data = data[:8<<10]
		}
		op, typ := byte(opBinary), realtime.BinaryMessage
		if text {
			op, typ = opText, realtime.TextMessage
		}
		c, sc := fr.dial(t, compress)
		c.message(op, data, compress, int(fragment))
		switch {
		case len(data) > limit || text && !utf8.Valid(data):
			want := 1009
			if len(data) <= limit {
				want = 1007
			}
			_, got, _, err := c.readClose()
			if err != nil || got != want {
				t.Fatalf("%d bytes, text=%v: peer got %d (%v), want %d", len(data), text, got, err, want)
			}
			if ce := fr.end(t, c, sc); ce.Code != want {
				t.Fatalf("handler's cause %v, want %d", ce, want)
			}
			select {
			case m := <-fr.msgs:
				t.Fatalf("the handler received %d bytes", len(m.Data))
			default:
			}
		default:
			m := lcAwait(t, fr.msgs, "the message")
			if m.Type != typ || !bytes.Equal(m.Data, data) {
				t.Fatalf("handler got %v %q, want %v %q", m.Type, m.Data, typ, data)
			}
			echo, err := c.readData()
			if err != nil || !bytes.Equal(echo, data) {
				t.Fatalf("echo %q (%v), want %q", echo, err, data)
			}
			c.frame(true, false, opClose, []byte{0x03, 0xe8})
			c.readClose()
			if ce := fr.end(t, c, sc); ce.Code != realtime.CloseNormal {
				t.Fatalf("cause %v", ce)
			}
		}
	})
}

// protocolError reports whether the handler's cause is that of a peer
// that broke the protocol: 1002, or 1006 as gorilla reports it (it
// sends 1002, and hands the reader a plain error).
func protocolError(ce *realtime.CloseError) bool {
	return ce.Code == realtime.CloseProtocolError || ce.Code == realtime.CloseAbnormal
}
