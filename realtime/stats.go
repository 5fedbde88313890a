package realtime

import "time"

// ConnStats is a snapshot of one connection, for inspection tools.
type ConnStats struct {
	// Since is when the connection opened (on Options.Clock).
	Since time.Time
	// Queued and QueuedBytes are what waits in the send queue.
	Queued, QueuedBytes int
	// Inbox is the number of received messages waiting for the handler.
	Inbox int
	// MessagesIn, BytesIn, MessagesOut and BytesOut count the traffic so
	// far: received from the peer, and written to it.
	MessagesIn, BytesIn, MessagesOut, BytesOut int64
}

// Stats returns a snapshot of the connection's state and traffic.
func (c *Conn) Stats() ConnStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ConnStats{
		Since:       c.since,
		Queued:      len(c.out.queue),
		QueuedBytes: c.out.bytes,
		Inbox:       c.in.msgs,
		MessagesIn:  c.stats.in,
		BytesIn:     c.stats.inBytes,
		MessagesOut: c.stats.out,
		BytesOut:    c.stats.outBytes,
	}
}
