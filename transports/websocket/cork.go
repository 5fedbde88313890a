package websocket

import (
	"bufio"
	"net"
	"net/http"
	"sync"
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
	mu     sync.Mutex
	corked bool
	buf    *[]byte
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
	conn *corkConn
	br   *bufio.Reader
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn}
	// gorilla adopts the returned reader as the connection's read
	// buffer (its ReadBufferSize is 0): make it ours, see idle.go.
	w.br = newReader(w.conn, brw.Reader)
	return w.conn, bufio.NewReadWriter(w.br, brw.Writer), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
