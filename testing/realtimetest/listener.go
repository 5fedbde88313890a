package realtimetest

import (
	"net"
	"sync"
)

// Listener is a net.Listener that remembers the connections it accepts,
// so that a test can drop them all as a network failure would. Put it in
// an httptest.Server before Start:
//
//	ts := httptest.NewUnstartedServer(route)
//	ln := &realtimetest.Listener{Listener: ts.Listener}
//	ts.Listener = ln
//	ts.Start()
//	...
//	ln.Drop() // every WebSocket, stream and poll loses its connection
//
// httptest.Server.CloseClientConnections does not reach hijacked
// connections: WebSockets, and SSE streams over HTTP/1.1.
type Listener struct {
	net.Listener

	mu    sync.Mutex // guards conns
	conns []net.Conn // accepted since the last Drop
}

// Accept accepts a connection and remembers it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// Drop closes every connection accepted so far.
func (l *Listener) Drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
