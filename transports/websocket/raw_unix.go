//go:build unix

package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// rawWriter writes to a socket without waiting: one write system call on
// the non-blocking descriptor, whatever it takes. Its fields serve one
// call at a time (corkConn.mu); fn is made once, so that a write allocates
// nothing.
type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// rawConn returns c's raw socket, or nil when c is not a socket (a TLS
// connection, say).
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// newRawWriter returns a rawWriter for c, or nil when c is not a socket
// (a TLS connection, say).
func newRawWriter(c net.Conn) *rawWriter {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.p)
	return true // never wait for the socket to be writable
}

// writeNow writes as much of p as the socket takes at once and returns
// how much that was.
func (w *rawWriter) writeNow(p []byte) (int, error) {
	w.p = p
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	if err != nil {
		return 0, err
	}
	n = max(n, 0)
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		werr = nil
	}
	return n, werr
}

// idleReader lends a connection's read buffer (the bufio.Reader gorilla
// reads frames from) a pooled buffer while the socket has bytes, and
// takes it back when they are read, so that an idle connection holds
// none. It waits for the socket with the runtime's poller (RawConn.Read)
// and makes, inside that wait, the first read into a pooled buffer: the
// same system calls as a blocking read, a buffer held only once there is
// something to read.
//
// Only the connection's reading goroutine uses it (Read, one at a time),
// but for the fields its poller guards.
type idleReader struct {
	rc   syscall.RawConn
	conn net.Conn // blocking reads, once the buffer is lent
	fill func(fd uintptr) bool

	// filling is the pooled reader fill reads into; lent is the pooled
	// reader whose buffer the connection's reader uses now. Each is nil
	// when there is none.
	filling, lent *bufio.Reader

	park   *poller // where it parks (park_linux.go); nil: it never does
	resume func()  // while parked; guarded by park.mu

	fd       int32 // the socket, during fill
	id       int32 // in park's set; guarded by park.mu
	polling  bool  // Read makes one non-blocking read of fd, for fill
	deadline bool  // the socket has the read deadline that parks it
	shut     bool  // never park again; guarded by park.mu
}

// errAgain is what Read returns for a socket with nothing to read while
// polling: fill then gives the buffer back and waits.
var errAgain = errors.New("websocket: nothing to read yet")

// newIdleReader returns an idleReader for c, or nil when c is not a
// socket (a TLS connection, say).
func newIdleReader(c net.Conn, park *poller) *idleReader {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	r := &idleReader{rc: rc, conn: c, park: park}
	r.fill = r.fillFD
	return r
}

// Read is what the pooled readers read from: one non-blocking read of
// the socket inside fill, the connection's blocking read otherwise.
func (r *idleReader) Read(p []byte) (int, error) {
	if !r.polling {
		n, err := r.conn.Read(p)
		if n == 0 && r.deadline && errors.Is(err, os.ErrDeadlineExceeded) {
			// The parking deadline, in the middle of a frame: the
			// connection is not idle.
			r.clearDeadline()
			n, err = r.conn.Read(p)
		}
		return n, err
	}
	for {
		n, err := syscall.Read(int(r.fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errAgain
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// fillFD runs inside RawConn.Read: it reads what the socket has into a
// pooled reader, or gives the buffer back and asks to wait when there is
// nothing yet. An error or the end of the stream ends the wait too: the
// reads after it, blocking ones, report it again.
func (r *idleReader) fillFD(fd uintptr) bool {
	if r.filling == nil {
		r.filling = readers.Get().(*bufio.Reader)
		r.filling.Reset(r)
	}
	r.fd, r.polling = int32(fd), true
	_, err := r.filling.Peek(1)
	r.polling = false
	if err == errAgain {
		r.filling.Reset(nil) // keep no connection alive from the pool
		readers.Put(r.filling)
		r.filling = nil
		return false
	}
	return true
}

// wait gives br's empty buffer back, waits for the socket to be readable
// and lends br a pooled buffer holding what it read. With a resume, a
// wait that lasts parkAfter parks instead (park_linux.go): wait then
// reports true, and resume runs once the socket is readable.
func (r *idleReader) wait(br *bufio.Reader, resume func()) (parked bool) {
	r.unlend(br)
	if resume != nil && r.park != nil && !r.deadline {
		r.deadline = r.conn.SetReadDeadline(time.Now().Add(r.park.delay())) == nil
	}
	err := r.rc.Read(r.fill) // an error (the socket closed) is the next read's
	if r.deadline && errors.Is(err, os.ErrDeadlineExceeded) {
		r.clearDeadline()
		if r.park.park(r, resume) {
			return true
		}
		r.rc.Read(r.fill)
	}
	r.lend(br, true)
	return false
}

// clearDeadline takes the parking deadline off the socket.
func (r *idleReader) clearDeadline() {
	r.deadline = false
	r.conn.SetReadDeadline(time.Time{})
}

// shutdown wakes the connection if it is parked and keeps it from parking
// again: its socket is about to close.
func (r *idleReader) shutdown() {
	if r != nil && r.park != nil {
		r.park.shut(r)
	}
}

// lend makes br read through the pooled reader fill filled, or through a
// fresh pooled one.
func (r *idleReader) lend(br *bufio.Reader, filled bool) {
	p := r.filling
	r.filling = nil
	if p == nil || !filled {
		if p == nil {
			p = readers.Get().(*bufio.Reader)
		}
		p.Reset(r)
	}
	*br = *p // br now reads p's buffer, from where p stands
	r.lent = p
}

// unlend takes back the buffer br has from the pool; br must be empty.
func (r *idleReader) unlend(br *bufio.Reader) {
	*br = bufio.Reader{}
	if r.lent != nil {
		r.lent.Reset(nil)
		readers.Put(r.lent)
		r.lent = nil
	}
}
