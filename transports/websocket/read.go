package websocket

import (
	"errors"
	"io"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// gorilla's SetReadLimit counts the bytes of a message's frames as they
// come off the wire: with permessage-deflate that is the compressed size,
// so 32 KiB of deflated zeros would reach the handler as a 32 MiB message.
// The transport therefore reads each message through a reader that counts
// what the handler receives (the inflated bytes, across every fragment of
// the message) and stops at the read limit, and checks that a text
// message is UTF-8 (RFC 6455 section 8.1). gorilla's own limit stays as a
// bound on the wire bytes: on an uncompressed connection it is the read
// limit itself (so an oversized frame is refused from its header, before
// its payload is read); with compression it is looser, since deflate may
// expand incompressible data a little, but it still ends a message whose
// compressed stream inflates to nothing and would otherwise never reach
// the limit.

// errInvalidUTF8 is the cause of a close for a text message that is not
// UTF-8.
var errInvalidUTF8 = errors.New("websocket: text message is not valid UTF-8")

// readMessage reads the peer's next message: at most limit bytes (limit
// <= 0 means no limit) once inflated, UTF-8 when it is text. Over the
// limit it sends a close frame with 1009 and returns
// websocket.ErrReadLimit; for invalid UTF-8, 1007 and errInvalidUTF8.
func (c *conn) readMessage(limit int64) (int, []byte, error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	data, err := readAll(r)
	if err != nil {
		return 0, nil, err
	}
	if limit > 0 && int64(len(data)) > limit {
		// What gorilla sends when its own limit trips.
		c.refuseMessage(websocket.CloseMessageTooBig, "")
		return 0, nil, websocket.ErrReadLimit
	}
	if mt == websocket.TextMessage && !utf8.Valid(data) {
		c.refuseMessage(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
		return 0, nil, errInvalidUTF8
	}
	return mt, data, nil
}

// scratch holds the buffers messages are read into before they are
// copied out at their exact size: io.ReadAll would allocate 512 bytes
// for a 64-byte message, and grow (allocating and copying again) through
// a 1 KiB one.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxScratch is the largest buffer kept in scratch.
const maxScratch = 64 << 10

// readAll reads r to its end into a message that owns its bytes (the
// handler may keep them) and has their exact size.
func readAll(r io.Reader) ([]byte, error) {
	bp := scratch.Get().(*[]byte)
	b := (*bp)[:0]
	var err error
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	data := make([]byte, len(b))
	copy(data, b)
	if cap(b) <= maxScratch {
		*bp = b[:0]
		scratch.Put(bp)
	}
	return data, err
}

// refuseMessage tells the peer why its message ends the connection. The read
// loop then ends, and the core drops the connection.
func (c *conn) refuseMessage(code int, reason string) {
	c.mu.Lock()
	c.sentClose = true
	c.mu.Unlock()
	c.wmu.Lock() // in turn with the other writers: TryWrite must not wait behind this one
	defer c.wmu.Unlock()
	deadline := time.Now().Add(min(c.opts.WriteTimeout, closeFrameTimeout))
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
}

// wireLimit is the limit gorilla applies to the wire bytes of a message
// whose inflated size may be limit: limit itself without compression,
// twice it (plus room for deflate's block headers) with.
func wireLimit(limit int64, compression bool) int64 {
	switch {
	case limit <= 0:
		return 0
	case !compression:
		return limit
	case limit > (math.MaxInt64-1024)/2:
		return 0 // beyond any frame: the inflated limit is the bound
	}
	return 2*limit + 1024
}
