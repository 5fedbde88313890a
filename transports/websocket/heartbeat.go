package websocket

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// Browsers answer pings but never show them to scripts, so a page cannot
// tell a half-open socket from a quiet one. On the rtkit subprotocol the
// server therefore also sends a heartbeat the page can see: an empty binary
// frame right after the upgrade, which tells the client that this server
// sends them, and then whenever nothing was written for PingInterval.
// rtkit's clients swallow it, and a client that hears no frame at all for
// PingInterval+PongTimeout reconnects (transports/PROTOCOL.md, "Heartbeat").
// The frame is written here, below the core, so handlers never see it.

// heartbeatConn is a conn whose client speaks the rtkit subprotocol.
//
// Writes: the core's writes and the heartbeat both write data frames, which
// gorilla allows one at a time; conn.wmu orders them. A heartbeat waits for
// a write in progress, and is not sent if another write started meanwhile.
type heartbeatConn struct {
	*conn
	last atomic.Int64 // clock time of the last write, in Unix nanoseconds

	mu      sync.Mutex
	stopped bool
	timer   realtime.Timer
	beats   sync.WaitGroup // heartbeats being written
}

// withHeartbeat returns c as the core should see it: with a heartbeat when
// the client selected the rtkit subprotocol and the route pings at all.
// It writes the first heartbeat at once, before the core may write.
func withHeartbeat(c *conn) wire.Reader {
	if c.ws.Subprotocol() != realtime.Subprotocol || c.opts.PingInterval <= 0 {
		return c
	}
	h := &heartbeatConn{conn: c}
	h.write()
	h.mu.Lock()
	h.timer = c.opts.Clock.AfterFunc(c.opts.PingInterval, h.tick)
	h.mu.Unlock()
	return h
}

var (
	_ wire.Reader    = (*heartbeatConn)(nil)
	_ wire.TryWriter = (*heartbeatConn)(nil)
)

// Write writes msgs; they count as a heartbeat.
func (h *heartbeatConn) Write(msgs []realtime.Message) error {
	h.last.Store(h.opts.Clock.Now().UnixNano())
	return h.conn.Write(msgs)
}

// TryWrite tries msgs; they count as a heartbeat.
func (h *heartbeatConn) TryWrite(msgs []realtime.Message) (bool, error) {
	h.last.Store(h.opts.Clock.Now().UnixNano())
	return h.conn.TryWrite(msgs)
}

// tick sends a heartbeat if nothing was written for PingInterval, and
// schedules the next check for when that will next be true.
func (h *heartbeatConn) tick() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.beats.Add(1)
	h.mu.Unlock()
	defer h.beats.Done()

	next := h.opts.PingInterval
	if idle := time.Duration(h.opts.Clock.Now().UnixNano() - h.last.Load()); idle < next {
		next -= idle
	} else if !h.write() {
		next -= time.Duration(h.opts.Clock.Now().UnixNano() - h.last.Load())
	}
	h.mu.Lock()
	if !h.stopped {
		h.timer = h.opts.Clock.AfterFunc(next, h.tick)
	}
	h.mu.Unlock()
}

// write sends one heartbeat, after the write in progress if there is
// one, unless a write started meanwhile (the peer hears from us then). It
// reports whether it wrote. An error is left to Read, which sees the
// broken connection. Writes record when they start, so a write that was
// under way before an idle interval does not count as one within it.
func (h *heartbeatConn) write() bool {
	before := h.last.Load()
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.last.Load() != before {
		return false
	}
	h.last.Store(h.opts.Clock.Now().UnixNano())
	h.ws.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	h.ws.WriteMessage(websocket.BinaryMessage, nil)
	return true
}

// Close stops the heartbeat, then closes the connection. Once the
// connection is torn down, a heartbeat still being written fails at once;
// Close waits for it, so that no goroutine outlives the connection.
func (h *heartbeatConn) Close(code int, reason string) error {
	h.mu.Lock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	err := h.conn.Close(code, reason)
	h.conn.mu.Lock()
	torn := h.conn.torn
	h.conn.mu.Unlock()
	if torn {
		h.beats.Wait()
	}
	return err
}
