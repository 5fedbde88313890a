package websocket_test

// A raw WebSocket client for tests that need frames gorilla's Dialer will
// not write: fragments of one compressed message, invalid UTF-8 text, any
// close payload. It speaks RFC 6455 and RFC 7692 over a plain TCP socket.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// rawConn is a client connection that writes frames as given.
type rawConn struct {
	conn    net.Conn
	br      *bufio.Reader
	deflate bool // permessage-deflate was negotiated
	written int  // bytes written after the handshake
}

// rawDial upgrades wsURL over a plain socket, offering permessage-deflate
// when deflate is set; the test's cleanup closes it.
func rawDial(t testing.TB, wsURL string, deflate bool) *rawConn {
	t.Helper()
	c, err := tryRawDial(wsURL, deflate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func tryRawDial(wsURL string, deflate bool) (*rawConn, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, lcWait)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(lcWait))
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key) + "\r\n"
	if deflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if got != deflate {
		conn.Close()
		return nil, fmt.Errorf("offered deflate=%v, negotiated %v", deflate, got)
	}
	conn.SetDeadline(time.Time{})
	return &rawConn{conn: conn, br: br, deflate: deflate}, nil
}

// frame writes one masked frame. rsv1 marks the first frame of a
// compressed message.
func (c *rawConn) frame(fin, rsv1 bool, op byte, payload []byte) error {
	var hdr []byte
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	switch n := len(payload); {
	case n < 126:
		hdr = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		hdr = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		hdr = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	buf := append(append(hdr, mask...), masked...)
	c.conn.SetWriteDeadline(time.Now().Add(lcWait))
	n, err := c.conn.Write(buf)
	c.written += n
	return err
}

// message writes one data message of type op in frames of at most
// fragment bytes of payload each (0: one frame), compressed first when
// compress is set.
func (c *rawConn) message(op byte, data []byte, compress bool, fragment int) error {
	payload := data
	if compress {
		payload = deflateMessage(data)
	}
	if fragment <= 0 || fragment > len(payload) {
		fragment = max(len(payload), 1)
	}
	first := true
	for {
		n := min(fragment, len(payload))
		fin := n == len(payload)
		fop := byte(opContinuation)
		if first {
			fop = op
		}
		if err := c.frame(fin, first && compress, fop, payload[:n]); err != nil {
			return err
		}
		payload, first = payload[n:], false
		if fin {
			return nil
		}
	}
}

// deflateMessage compresses data as permessage-deflate does: a raw
// deflate stream ended by a sync flush, without its final 00 00 ff ff.
func deflateMessage(data []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(data)
	fw.Flush()
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// readFrame reads one frame from the server (unmasked, never fragmented
// in these tests).
func (c *rawConn) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	if h[0]&0x40 != 0 {
		// A compressed message from the server.
		fr := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
		payload, err = io.ReadAll(fr)
		if err != nil {
			return 0, nil, err
		}
	}
	return h[0] & 0x0F, payload, nil
}

// errNoCloseFrame is readClose's error when the connection ended without
// a close frame.
var errNoCloseFrame = errors.New("the connection ended without a close frame")

// readClose reads frames, collecting data messages, until the server's
// close frame, within lcWait, and returns its code (1005 for an empty
// payload) and reason.
func (c *rawConn) readClose() (msgs [][]byte, code int, reason string, err error) {
	c.conn.SetReadDeadline(time.Now().Add(lcWait))
	for {
		op, p, err := c.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return msgs, 0, "", fmt.Errorf("no close frame within %v", lcWait)
			}
			return msgs, 0, "", fmt.Errorf("%w: %v", errNoCloseFrame, err)
		}
		switch op {
		case opClose:
			if len(p) < 2 {
				return msgs, 1005, "", nil
			}
			return msgs, int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
		case opText, opBinary:
			msgs = append(msgs, p)
		}
	}
}

// readData reads the next data message within lcWait.
func (c *rawConn) readData() ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(lcWait))
	for {
		op, p, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case opText, opBinary:
			return p, nil
		case opClose:
			return nil, fmt.Errorf("closed: %q", p)
		}
	}
}
