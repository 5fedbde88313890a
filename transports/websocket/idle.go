package websocket

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// An idle connection costs what its reading goroutine holds while it
// waits. Blocked inside gorilla's frame reader that is a stack of about
// 4 KiB; blocked in waitReadable, a handful of frames deep, it is under
// 1 KiB, and the garbage collector shrinks the goroutine's stack to its
// minimum while it waits. So the wire reads through a bufio.Reader of its
// own (which gorilla adopts as the connection's read buffer, as it does
// net/http's), knows when that buffer is empty, and then waits for the
// socket to be readable before it lets gorilla parse a frame.
//
// On a plain socket the wait holds no buffer either: the reader's buffer
// goes back to a pool shared by every connection whenever it is empty, and
// a pooled one is filled by the first read after the socket turns readable
// (idleReader, raw_unix.go). So an idle connection keeps no read buffer,
// and a busy one reads a whole frame of up to readBufferSize bytes with
// one system call. Over TLS, where the socket is not ours to read, the
// connection keeps a small buffer of its own (smallReadBuffer).

// parkAfter is how long a connection waits for its peer with its
// goroutine before it parks (park_linux.go).
const parkAfter = time.Second

// readBufferSize is the size of the pooled read buffers. Frame headers and
// messages up to about this size are read through it with one system
// call; a larger payload is read straight into the message (bufio reads
// past an empty buffer).
const readBufferSize = 4 << 10

// smallReadBuffer is the read buffer a connection keeps when it cannot
// give it back while idle: small, since it is held for the connection's
// life.
const smallReadBuffer = 512

// readers holds the read buffers of connections that are not idle, as the
// bufio.Readers that carry them; see idleReader.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// newReader returns the read buffer for a hijacked connection and, on a
// plain socket, the idleReader that lends it its buffer. If net/http had
// already buffered bytes the client sent right after its handshake, that
// is net/http's reader (gorilla refuses such a connection).
func newReader(c net.Conn, hijacked *bufio.Reader, park *poller) (*bufio.Reader, *idleReader) {
	if hijacked != nil && hijacked.Buffered() > 0 {
		return hijacked, nil
	}
	ir := newIdleReader(c, park)
	if ir == nil {
		return bufio.NewReaderSize(c, smallReadBuffer), nil
	}
	// gorilla keeps this pointer for the connection's life; the buffer in
	// it comes and goes (lend).
	br := new(bufio.Reader)
	ir.lend(br, false)
	return br, ir
}

// waitReadable blocks until the read buffer has bytes (or the socket
// failed, which the next read reports) by filling it from this shallow
// frame: the read it makes is the one gorilla would make, so it costs no
// system call more. On a plain socket the empty buffer goes back to the
// pool first, and with a resume the wait may park instead (reported
// true; see park_linux.go).
func (c *conn) waitReadable(resume func()) (parked bool) {
	if c.br == nil || c.br.Buffered() > 0 {
		return false
	}
	if c.idle != nil {
		return c.idle.wait(c.br, resume)
	}
	c.br.Peek(1)
	return false
}
