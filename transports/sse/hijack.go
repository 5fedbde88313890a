package sse

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// An idle stream served by net/http holds the server's goroutine for the
// connection, its stack grown by reading the request, and its buffers.
// Over HTTP/1.1 the transport instead takes the connection over: it
// writes the response itself, as net/http would (chunked, so that a
// client tells a dropped stream from one that ended, with
// "Connection: close"), lets net/http's goroutine return, and streams on
// a small goroutine of its own, with a second one blocked in a read to
// learn at once that the client went. HTTP/2 streams, and
// ResponseWriters that cannot hijack (a compressing middleware's, say),
// are served through net/http as before.

// hijack takes r's connection over and returns it, to be written to in
// chunks, the response head (with the headers set on w) going out with
// the first; or it returns nil, having written nothing, when the
// connection cannot be taken over.
func hijack(w http.ResponseWriter, r *http.Request) *chunkedConn {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return nil
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	// What the client sent after the request (nothing, from a well-behaved
	// one) is dropped with net/http's reader.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := w.Header().Clone()
	h.Del("Content-Length")
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	h.Write(&head)
	head.WriteString("\r\n")
	conn.SetDeadline(time.Time{}) // net/http's read and write timeouts do not apply to a stream
	return &chunkedConn{Conn: conn, head: head.Bytes()}
}

// chunkedConn writes each Write as one chunk of the response body, in one
// system call (writev) with the chunk's framing, the response head before
// the first.
type chunkedConn struct {
	net.Conn
	head []byte // written with the first Write; nil after it
	size []byte // scratch for the chunk-size line
}

var crlf = []byte("\r\n")

func (c *chunkedConn) Write(p []byte) (int, error) {
	if len(p) == 0 { // an empty chunk would end the body
		if c.head != nil { // a resumed stream's first write: the head alone
			_, err := c.Conn.Write(c.head)
			c.head = nil
			return 0, err
		}
		return 0, nil
	}
	pre := append(strconv.AppendInt(append(c.size[:0], c.head...), int64(len(p)), 16), '\r', '\n')
	c.head = nil
	c.size = pre
	if cap(pre) > 64 {
		c.size = nil // do not keep the head's buffer
	}
	bufs := net.Buffers{pre, p, crlf}
	n, err := bufs.WriteTo(c.Conn)
	return int(min(max(0, n-int64(len(pre))), int64(len(p)))), err
}

// end writes the last chunk: the stream ended, it did not drop.
func (c *chunkedConn) end() error {
	_, err := c.Conn.Write(append(c.head, "0\r\n\r\n"...))
	c.head = nil
	return err
}

// watch reads from conn until it fails, then calls gone: a client that
// closes its end of a stream is noticed at once, not at the next write.
// A client sends nothing after the request on a stream, so bytes count as
// the end too.
func watch(conn net.Conn, gone func()) {
	var b [1]byte
	conn.Read(b[:])
	gone()
}
