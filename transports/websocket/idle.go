package websocket

import (
	"bufio"
	"net"
)

// An idle connection costs what its reading goroutine holds while it
// waits. Blocked inside gorilla's frame reader that is a stack of about
// 4 KiB; blocked in waitReadable, a handful of frames deep, it is under
// 1 KiB, and the garbage collector shrinks the goroutine's stack to its
// minimum while it waits. So the wire reads through a bufio.Reader of its
// own (which gorilla adopts as the connection's read buffer, as it does
// net/http's), knows when that buffer is empty, and then waits for the
// socket to be readable before it lets gorilla parse a frame.

// readBufferSize is the read buffer of a connection. Frame headers and
// small messages are read through it; a payload at least as large as it
// is read straight into the message (bufio reads past an empty buffer),
// so a small buffer costs no system calls on large messages.
const readBufferSize = 512

// newReader returns the read buffer for a hijacked connection: its own,
// unless net/http had already buffered bytes the client sent right after
// its handshake (then those must be read first, from net/http's buffer).
func newReader(c net.Conn, hijacked *bufio.Reader) *bufio.Reader {
	if hijacked != nil && hijacked.Buffered() > 0 {
		return hijacked
	}
	return bufio.NewReaderSize(c, readBufferSize)
}

// waitReadable blocks until the read buffer has bytes (or the socket
// failed, which the next read reports) by filling it from this shallow
// frame: the read it makes is the one gorilla would make, so it costs no
// system call more.
func (c *conn) waitReadable() {
	if c.br != nil && c.br.Buffered() == 0 {
		c.br.Peek(1)
	}
}
