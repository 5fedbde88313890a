package websocket

import (
	"bufio"
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
	"github.com/rtkit/rtkit/realtime/wire"
)

// Options configure the WebSocket transport. The zero value is the
// default: no compression, no subprotocols but rtkit's, a 10 s handshake.
type Options struct {
	// Compression negotiates permessage-deflate with clients that offer
	// it. It costs memory per connection, so it is off by default.
	Compression bool
	// Subprotocols are the subprotocols the route speaks, in order of
	// preference; "rtkit", which rtkit's clients offer, is always
	// accepted after them.
	Subprotocols []string
	// HandshakeTimeout bounds writing the upgrade response. Zero means
	// 10 seconds. (Reading the request is the http.Server's
	// ReadHeaderTimeout.)
	HandshakeTimeout time.Duration
}

// DefaultHandshakeTimeout is the handshake timeout of the zero Options.
const DefaultHandshakeTimeout = 10 * time.Second

// Transport is the WebSocket transport: list it in
// realtime.Options.Transports. One value may serve many routes.
type Transport struct {
	o    Options
	park poller // the parked connections of every route it serves (park_linux.go)
}

// New returns the WebSocket transport with options o.
func New(o Options) *Transport {
	o.Subprotocols = append([]string(nil), o.Subprotocols...)
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return &Transport{o: o}
}

var _ realtime.Transport = (*Transport)(nil)

// Kind returns realtime.WebSocket.
func (t *Transport) Kind() realtime.Kind { return realtime.WebSocket }

// Bind returns the WebSocket server for route rt.
func (t *Transport) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
	ep := wire.NewEndpoint(rt, realtime.WebSocket)
	o := ep.Options()
	return &server{
		ep:   ep,
		opts: o,
		park: &t.park,
		upgrader: websocket.Upgrader{
			HandshakeTimeout:  t.o.HandshakeTimeout,
			ReadBufferSize:    0, // it adopts the reader Hijack returns (see idle.go)
			WriteBufferSize:   writeBufferSize,
			WriteBufferPool:   writeBuffers,
			Subprotocols:      append(append([]string(nil), t.o.Subprotocols...), realtime.Subprotocol),
			EnableCompression: t.o.Compression,
			// The route has already applied its origin policy.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}, nil
}

const (
	writeBufferSize = 4 << 10
	// closeFrameTimeout bounds the wait to send a close frame.
	closeFrameTimeout = time.Second
)

// writeBuffers is shared by every route: a buffer is held only while a
// message is being written.
var writeBuffers = &sync.Pool{}

type server struct {
	ep       *wire.Endpoint
	opts     *realtime.Options
	upgrader websocket.Upgrader
	park     *poller // the transport's parked connections
}

var (
	_ realtime.TransportHandler = (*server)(nil)
	_ wire.Describer            = (*server)(nil)
)

// Describe tells negotiating clients where to upgrade.
func (s *server) Describe(r *http.Request) string { return r.URL.Path }

// Match reports whether r asks for a WebSocket upgrade.
func (s *server) Match(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// ServeHTTP upgrades r and serves the connection on a goroutine of its
// own until it ends.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	link, err := s.ep.Accept(r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	cw := &corkingWriter{ResponseWriter: w, slack: s.opts.WriteTimeout / 10, park: s.park}
	ws, err := s.upgrader.Upgrade(cw, r, upgradeHeader(w.Header()))
	if err != nil {
		link.Abort() // the upgrader has answered the request
		return
	}
	c := &conn{ws: ws, opts: s.opts, cork: cw.conn, br: cw.br, idle: cw.idle}
	ws.SetPingHandler(c.pong)
	ws.SetCloseHandler(c.closeReply)
	ws.SetReadLimit(wireLimit(s.opts.ReadLimit, s.upgrader.EnableCompression))
	if s.opts.PingInterval > 0 {
		c.keepAlive()
	}
	// The connection is hijacked: the core serves it on a goroutine of its
	// own and net/http's, with its deep stack and its request buffers,
	// ends. That keeps one goroutine per idle connection, and a small one.
	link.Start(withHeartbeat(c)) // heartbeat.go: rtkit clients see a heartbeat
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

// conn is one upgraded connection.
//
// Keepalive: every PingInterval the wire pings the peer and, PongTimeout
// later, checks that it heard something (a pong or a message) since. The
// check fails the connection only if the core was inside Read for that
// whole time: while the core does not read (its inbox is full, the server
// is the slow side) the peer's pongs wait unread in the socket and must
// not count against it.
type conn struct {
	ws   *websocket.Conn
	opts *realtime.Options
	cork *corkConn     // the socket under ws, to write a batch at once
	br   *bufio.Reader // ws's read buffer (see idle.go)
	idle *idleReader   // lends br its buffer; nil when br keeps its own

	// Writes: gorilla writes one frame at a time, and one that waits for a
	// slow peer holds up the others. wmu is held by every writer (Write,
	// TryWrite, pings, pongs, heartbeats, close frames; Close only when it
	// is free, see there), so that TryWrite can see that a write is under
	// way and not wait for it: it then keeps its messages in pending.
	// behind is set when TryWrite left pending messages or a tail of bytes
	// in cork; the next Write, the core's answer to TryWrite's false,
	// sends them first. The core never overlaps TryWrite and Write (its
	// writer role orders them), so pending and behind need no lock.
	wmu     sync.Mutex
	pending []realtime.Message
	behind  bool

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

var (
	_ wire.Reader    = (*conn)(nil)
	_ wire.TryWriter = (*conn)(nil)
	_ wire.Parker    = (*conn)(nil)
)

// Read returns the peer's next message.
func (c *conn) Read() (realtime.Message, error) {
	m, _, err := c.ReadOrPark(nil)
	return m, err
}

// ReadOrPark returns the peer's next message, or parks the connection
// when the peer has been quiet for parkAfter (see park_linux.go). A
// parked connection counts as inside Read for the keepalive.
func (c *conn) ReadOrPark(resume func()) (realtime.Message, bool, error) {
	c.reads.Add(1)
	c.inRead.Store(true)
	if c.waitReadable(resume) {
		return realtime.Message{}, true, nil
	}
	mt, data, err := c.readMessage(c.opts.ReadLimit)
	c.inRead.Store(false)
	if err != nil {
		c.mu.Lock()
		c.readDone = true
		timedOut := c.timedOut
		c.mu.Unlock()
		if timedOut {
			return realtime.Message{}, false, &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "ping timeout", Err: realtime.ErrPingTimeout}
		}
		return realtime.Message{}, false, readError(err)
	}
	c.heard.Add(1)
	return realtime.Message{Type: realtime.MessageType(mt), Data: data}, false, nil
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
	case errors.Is(err, errInvalidUTF8):
		return &realtime.CloseError{Code: realtime.CloseInvalidData, Reason: "invalid UTF-8", Err: err}
	case errors.As(err, &ne) && ne.Timeout():
		return &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "ping timeout", Err: realtime.ErrPingTimeout}
	}
	return &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "connection lost", Err: err}
}

// keepAlive starts the ping cycle.
func (c *conn) keepAlive() {
	c.ws.SetPongHandler(func(string) error {
		c.heard.Add(1)
		return nil
	})
	c.pinger = c.opts.Clock.AfterFunc(c.opts.PingInterval, c.ping)
}

// ping pings the peer and schedules the check of its answer.
func (c *conn) ping() {
	c.mu.Lock()
	if c.torn || c.sentClose {
		c.mu.Unlock()
		return
	}
	c.pings.Add(1)
	c.mu.Unlock()
	defer c.pings.Done()
	heard, reads, reading := c.heard.Load(), c.reads.Load(), c.inRead.Load()
	c.wmu.Lock()
	err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout))
	c.wmu.Unlock()
	if err != nil {
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
func (c *conn) check(heard, reads uint64, reading bool) {
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

// Write writes msgs as one frame each within WriteTimeout, after what a
// TryWrite kept.
func (c *conn) Write(msgs []realtime.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(c.opts.WriteTimeout)
	if err := c.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if c.behind {
		c.behind = false
		if c.cork != nil {
			c.cork.SetWriteDeadline(deadline)
			if err := c.cork.flushTail(); err != nil {
				return writeError(err)
			}
		}
		msgs = append(c.pending, msgs...)
		c.pending = nil
	}
	if len(msgs) > 1 && c.cork != nil {
		// One write for the whole batch instead of one per frame.
		c.cork.cork()
		defer c.cork.uncork()
	}
	if err := c.writeFrames(msgs); err != nil {
		return err
	}
	if len(msgs) > 1 && c.cork != nil {
		if err := c.cork.uncork(); err != nil {
			return writeError(err)
		}
	}
	return nil
}

// TryWrite writes msgs, as one socket write, as far as the socket takes
// them without waiting (see wire.TryWriter). Behind a write under way, or
// on a socket without raw access, it keeps them all for the next Write.
func (c *conn) TryWrite(msgs []realtime.Message) (bool, error) {
	if c.cork == nil || !c.wmu.TryLock() {
		c.pending = append(c.pending, msgs...)
		c.behind = true
		return false, nil
	}
	defer c.wmu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return false, err
	}
	c.cork.corkToTry()
	if err := c.writeFrames(msgs); err != nil {
		c.cork.uncork()
		return false, err
	}
	done, err := c.cork.tryUncork()
	if err != nil {
		return false, writeError(err)
	}
	c.behind = !done
	return done, nil
}

// writeFrames writes one frame per message; the caller holds wmu.
func (c *conn) writeFrames(msgs []realtime.Message) error {
	for _, m := range msgs {
		var err error
		if wire.IsShared(m) {
			// A broadcast: frame (and compress) it once for every
			// connection.
			var pm any
			if pm, err = wire.Encoded(m, realtime.WebSocket, prepare); err == nil {
				err = c.ws.WritePreparedMessage(pm.(*websocket.PreparedMessage))
			}
		} else {
			err = c.ws.WriteMessage(int(m.Type), m.Data)
		}
		if err != nil {
			return writeError(err)
		}
	}
	return nil
}

// closeReply answers the peer's close frame, as gorilla's default handler
// does, in turn with the other writers.
func (c *conn) closeReply(code int, _ string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(pongWait))
	return nil
}

// pong answers a ping, as gorilla's default handler does, in turn with
// the other writers.
func (c *conn) pong(data string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(pongWait))
	var ne net.Error
	if err == websocket.ErrCloseSent || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// pongWait is how long a pong may take to write (gorilla's own figure).
const pongWait = time.Second

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
func (c *conn) Close(code int, reason string) error {
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
	// The caller holds the core's writer role, so the write under way, if
	// any, is a ping, pong or heartbeat: wait for it only as gorilla's
	// timed lock does, and hold wmu when it is free, so that TryWrite does
	// not wait behind the close frame.
	if c.wmu.TryLock() {
		defer c.wmu.Unlock()
	}
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(min(c.opts.WriteTimeout, closeFrameTimeout))); err != nil {
		c.teardownLocked()
		return err
	}
	c.grace = c.opts.Clock.AfterFunc(c.opts.WriteTimeout, c.closeSocket)
	return nil
}

// closeSocket closes the TCP connection, once a parked connection was
// woken to read the end of it.
func (c *conn) closeSocket() {
	c.idle.shutdown()
	c.ws.Close()
}

// teardownLocked stops the timers and closes the TCP connection.
func (c *conn) teardownLocked() {
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
	c.closeSocket()
	c.mu.Unlock()
	c.pings.Wait()
	c.mu.Lock()
}
