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

	mu     sync.Mutex // guards corked, trying, buf, raw and noRaw
	corked bool
	trying bool    // corked by TryWrite: gather everything, write nothing
	buf    *[]byte // gathered bytes; after tryUncork, what the socket did not take (the tail)
	raw    *rawWriter
	noRaw  bool // the socket offers no raw access: tryUncork leaves it all to Write
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

// Write gathers p while corked, and writes it through otherwise, after
// the tail tryUncork left.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		c.releaseLocked()
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBuffers.Get().(*[]byte)
	}
	if !c.trying && len(*c.buf)+len(p) > maxCork {
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

// corkToTry starts gathering writes for tryUncork, which must follow.
func (c *corkConn) corkToTry() {
	c.mu.Lock()
	c.corked, c.trying = true, true
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked, c.trying = false, false
	err := c.flushLocked()
	c.releaseLocked()
	return err
}

// tryUncork stops gathering and writes what was gathered as far as the
// socket takes it without waiting. It reports whether all of it went; if
// not, the rest is the tail, which the next Write or flushTail sends
// first.
func (c *corkConn) tryUncork() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked, c.trying = false, false
	if c.buf == nil || len(*c.buf) == 0 {
		c.releaseLocked()
		return true, nil
	}
	if c.raw == nil && !c.noRaw {
		c.raw = newRawWriter(c.Conn)
		c.noRaw = c.raw == nil
	}
	if c.noRaw {
		return false, nil
	}
	n, err := c.raw.writeNow(*c.buf)
	if err != nil {
		return false, err
	}
	rest := copy(*c.buf, (*c.buf)[n:])
	*c.buf = (*c.buf)[:rest]
	if rest > 0 {
		return false, nil
	}
	c.releaseLocked()
	return true, nil
}

// hasTail reports whether tryUncork left bytes to write.
func (c *corkConn) hasTail() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.corked && c.buf != nil && len(*c.buf) > 0
}

// flushTail writes the tail, waiting as long as the socket's write
// deadline allows.
func (c *corkConn) flushTail() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.releaseLocked()
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

// releaseLocked returns an empty buffer to the pool: idle connections hold
// none.
func (c *corkConn) releaseLocked() {
	if c.buf == nil || len(*c.buf) > 0 {
		return
	}
	if cap(*c.buf) <= maxCork {
		corkBuffers.Put(c.buf)
	}
	c.buf = nil
}

// corkingWriter hands gorilla's upgrader a corkable connection.
type corkingWriter struct {
	http.ResponseWriter
	slack time.Duration // corkConn.slack
	park  *poller       // where the connection parks
	conn  *corkConn
	br    *bufio.Reader
	idle  *idleReader
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn, slack: w.slack}
	// gorilla adopts the returned reader as the connection's read
	// buffer (its ReadBufferSize is 0): make it ours, see idle.go.
	w.br, w.idle = newReader(conn, brw.Reader, w.park)
	return w.conn, bufio.NewReadWriter(w.br, brw.Writer), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
