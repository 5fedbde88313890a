package websocket

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
)

func init() { realtime.Register(Transport{}) }

// Transport is the WebSocket transport. Its zero value is ready to use; it
// is registered under realtime.WebSocket when the package is imported.
type Transport struct{}

var _ realtime.Transport = Transport{}

// Kind returns realtime.WebSocket.
func (Transport) Kind() realtime.Kind { return realtime.WebSocket }

// Handler returns the WebSocket server for one route.
func (Transport) Handler(ep *realtime.Endpoint) realtime.TransportHandler {
	o := ep.Options()
	return &server{
		ep:   ep,
		opts: o,
		upgrader: websocket.Upgrader{
			HandshakeTimeout:  o.HandshakeTimeout,
			ReadBufferSize:    readBufferSize,
			WriteBufferSize:   writeBufferSize,
			WriteBufferPool:   writeBuffers,
			Subprotocols:      append(append([]string(nil), o.Subprotocols...), realtime.Subprotocol),
			EnableCompression: o.Compression,
			// The route has already applied its origin policy.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
}

const (
	readBufferSize  = 1 << 10
	writeBufferSize = 4 << 10
	// closeFrameTimeout bounds the wait to send a close frame.
	closeFrameTimeout = time.Second
)

// writeBuffers is shared by every route: a buffer is held only while a
// message is being written.
var writeBuffers = &sync.Pool{}

type server struct {
	ep       *realtime.Endpoint
	opts     *realtime.Options
	upgrader websocket.Upgrader
}

var (
	_ realtime.TransportHandler = (*server)(nil)
	_ realtime.Describer        = (*server)(nil)
)

// Describe tells negotiating clients where to upgrade.
func (s *server) Describe(r *http.Request) realtime.TransportInfo {
	return realtime.TransportInfo{Transport: realtime.WebSocket, URL: r.URL.Path}
}

// Match reports whether r asks for a WebSocket upgrade.
func (s *server) Match(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// ServeHTTP upgrades r and serves the connection on a goroutine of its
// own until it ends.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	link, err := s.ep.Accept(r)
	if err != nil {
		realtime.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(cw, r, upgradeHeader(w.Header()))
	if err != nil {
		link.Abort() // the upgrader has answered the request
		return
	}
	c := &wire{ws: ws, opts: s.opts, cork: cw.conn}
	ws.SetReadLimit(s.opts.ReadLimit)
	if s.opts.PingInterval > 0 {
		c.keepAlive()
	}
	// The connection is hijacked: the core serves it on a goroutine of its
	// own and net/http's, with its deep stack and its request buffers,
	// ends. That keeps one goroutine per idle connection, and a small one.
	link.Start(c)
}

// upgradeHeader returns the headers middleware set, minus those the
// upgrader writes itself.
func upgradeHeader(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(http.Header, len(h))
	for k, v := range h {
		if strings.HasPrefix(k, "Sec-Websocket-") || k == "Content-Type" || k == "Content-Length" {
			continue
		}
		out[k] = v
	}
	return out
}

// wire is one upgraded connection.
//
// Keepalive: every PingInterval the wire pings the peer and, PongTimeout
// later, checks that it heard something (a pong or a message) since. The
// check fails the connection only if the core was inside Read for that
// whole time: while the core does not read (its inbox is full, the server
// is the slow side) the peer's pongs wait unread in the socket and must
// not count against it.
type wire struct {
	ws   *websocket.Conn
	opts *realtime.Options
	cork *corkConn // the socket under ws, to write a batch at once

	heard  atomic.Uint64 // pongs and messages received
	reads  atomic.Uint64 // Read calls entered
	inRead atomic.Bool   // the core is inside Read

	mu        sync.Mutex
	readDone  bool // Read has failed: the read loop has ended
	sentClose bool
	torn      bool
	timedOut  bool           // the keepalive failed the connection
	grace     realtime.Timer // drops the TCP connection if the peer never answers our close
	pinger    realtime.Timer
	pings     sync.WaitGroup
}

var _ realtime.Reader = (*wire)(nil)

// Read returns the peer's next message.
func (c *wire) Read() (realtime.Message, error) {
	c.reads.Add(1)
	c.inRead.Store(true)
	mt, data, err := c.ws.ReadMessage()
	c.inRead.Store(false)
	if err != nil {
		c.mu.Lock()
		c.readDone = true
		timedOut := c.timedOut
		c.mu.Unlock()
		if timedOut {
			return realtime.Message{}, &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "ping timeout", Err: realtime.ErrPingTimeout}
		}
		return realtime.Message{}, readError(err)
	}
	c.heard.Add(1)
	return realtime.Message{Type: realtime.MessageType(mt), Data: data}, nil
}

// readError turns gorilla's read errors into the core's.
func readError(err error) error {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		code := ce.Code
		if code == websocket.CloseNoStatusReceived {
			code = realtime.CloseNoStatus
		}
		return &realtime.CloseError{Code: code, Reason: ce.Text}
	case errors.Is(err, websocket.ErrReadLimit):
		return &realtime.CloseError{Code: realtime.CloseTooBig, Reason: "message too big", Err: realtime.ErrReadLimit}
	case errors.As(err, &ne) && ne.Timeout():
		return &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "ping timeout", Err: realtime.ErrPingTimeout}
	}
	return &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "connection lost", Err: err}
}

// keepAlive starts the ping cycle.
func (c *wire) keepAlive() {
	c.ws.SetPongHandler(func(string) error {
		c.heard.Add(1)
		return nil
	})
	c.pinger = c.opts.Clock.AfterFunc(c.opts.PingInterval, c.ping)
}

// ping pings the peer and schedules the check of its answer.
func (c *wire) ping() {
	c.mu.Lock()
	if c.torn || c.sentClose {
		c.mu.Unlock()
		return
	}
	c.pings.Add(1)
	c.mu.Unlock()
	defer c.pings.Done()
	heard, reads, reading := c.heard.Load(), c.reads.Load(), c.inRead.Load()
	if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)) != nil {
		return // the connection is broken: Read will say so
	}
	c.mu.Lock()
	if !c.torn {
		c.pinger = c.opts.Clock.AfterFunc(c.opts.PongTimeout, func() { c.check(heard, reads, reading) })
	}
	c.mu.Unlock()
}

// check fails the connection if nothing was heard since the ping while
// the core was reading all along, and otherwise starts the next cycle.
func (c *wire) check(heard, reads uint64, reading bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.torn || c.sentClose {
		return
	}
	if reading && c.inRead.Load() && c.reads.Load() == reads && c.heard.Load() == heard {
		c.timedOut = true
		c.teardownLocked()
		return
	}
	c.pinger = c.opts.Clock.AfterFunc(max(c.opts.PingInterval-c.opts.PongTimeout, 0), c.ping)
}

// Write writes msgs as one frame each within WriteTimeout.
func (c *wire) Write(msgs []realtime.Message) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return err
	}
	if len(msgs) > 1 && c.cork != nil {
		// One write for the whole batch instead of one per frame.
		c.cork.cork()
		defer c.cork.uncork()
	}
	for _, m := range msgs {
		var err error
		if m.IsShared() {
			// A broadcast: frame (and compress) it once for every
			// connection.
			var pm any
			if pm, err = m.Encoded(realtime.WebSocket, prepare); err == nil {
				err = c.ws.WritePreparedMessage(pm.(*websocket.PreparedMessage))
			}
		} else {
			err = c.ws.WriteMessage(int(m.Type), m.Data)
		}
		if err != nil {
			return writeError(err)
		}
	}
	if len(msgs) > 1 && c.cork != nil {
		if err := c.cork.uncork(); err != nil {
			return writeError(err)
		}
	}
	return nil
}

func prepare(m realtime.Message) (any, error) {
	return websocket.NewPreparedMessage(int(m.Type), m.Data)
}

func writeError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %v", realtime.ErrWriteTimeout, err)
	}
	return err
}

// Close sends a close frame and gives the peer WriteTimeout to answer it;
// once the read loop has ended it drops the connection at once.
func (c *wire) Close(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readDone {
		c.teardownLocked()
		return nil
	}
	if c.sentClose || c.torn {
		return nil
	}
	c.sentClose = true
	if code == realtime.CloseAbnormal {
		// Nothing to tell the peer: the connection is already broken.
		c.teardownLocked()
		return nil
	}
	// A write in progress holds gorilla's write lock; a slow peer must not
	// hold up whoever closes (a Send that overflowed, a shutdown) for long.
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(min(c.opts.WriteTimeout, closeFrameTimeout))); err != nil {
		c.teardownLocked()
		return err
	}
	c.grace = c.opts.Clock.AfterFunc(c.opts.WriteTimeout, func() { c.ws.Close() })
	return nil
}

// teardownLocked stops the timers and closes the TCP connection.
func (c *wire) teardownLocked() {
	if c.torn {
		return
	}
	c.torn = true
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if c.grace != nil {
		c.grace.Stop()
	}
	c.ws.Close()
	c.mu.Unlock()
	c.pings.Wait()
	c.mu.Lock()
}
