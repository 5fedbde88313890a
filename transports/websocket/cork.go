package websocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// gorilla writes every frame to the socket on its own: a batch of n
// messages costs n system calls. A corked connection gathers the frames of
// one batch and writes them at once, which is what makes a burst (a
// broadcast, a push stream) cheap. Idle connections hold no buffer.

// maxCork is the most a corked connection gathers before it writes.
const maxCork = 64 << 10

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// corkConn is the hijacked connection gorilla writes to.
type corkConn struct {
	net.Conn
	slack    time.Duration // see SetWriteDeadline
	deadline atomic.Int64  // the write deadline on the socket, in Unix ns; 0: none

	mu     sync.Mutex // guards corked and buf
	corked bool
	buf    *[]byte
}

// SetWriteDeadline sets the socket's write deadline, unless t is later
// than the one already set by less than slack: then the earlier one
// stands. gorilla sets the deadline before every frame, and moving a
// socket's deadline re-arms a runtime timer, a tenth of the CPU of a
// fan-out that writes one message at a time; with the slack a write still
// has at least WriteTimeout-slack to complete. An earlier or zero t is
// always set.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	if set := c.deadline.Load(); n != 0 && set != 0 && n >= set && n-set < int64(c.slack) {
		return nil
	}
	c.deadline.Store(n)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines on the socket, and records the write one.
func (c *corkConn) SetDeadline(t time.Time) error {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	c.deadline.Store(n)
	return c.Conn.SetDeadline(t)
}

// Write gathers p while corked, and writes it through otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBuffers.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > maxCork {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxCork {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork starts gathering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.flushLocked()
	if c.buf != nil {
		if cap(*c.buf) <= maxCork {
			*c.buf = (*c.buf)[:0]
			corkBuffers.Put(c.buf)
		}
		c.buf = nil
	}
	return err
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil || len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// corkingWriter hands gorilla's upgrader a corkable connection.
type corkingWriter struct {
	http.ResponseWriter
	slack time.Duration // corkConn.slack
	conn  *corkConn
	br    *bufio.Reader
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn, slack: w.slack}
	// gorilla adopts the returned reader as the connection's read
	// buffer (its ReadBufferSize is 0): make it ours, see idle.go.
	w.br = newReader(w.conn, brw.Reader)
	return w.conn, bufio.NewReadWriter(w.br, brw.Writer), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
