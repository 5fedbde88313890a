//go:build unix

package websocket

import (
	"errors"
	"net"
	"syscall"
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

// newRawWriter returns a rawWriter for c, or nil when c is not a socket
// (a TLS connection, say).
func newRawWriter(c net.Conn) *rawWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
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
