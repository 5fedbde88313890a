package realtime

import (
	"context"
	"errors"
)

// sendQueue is a connection's outgoing side. Its fields are guarded by
// Conn.mu.
//
// Invariants:
//   - At most one goroutine holds the writer role (writing); only it calls
//     wireConn.Write or TryWrite, outside the lock, with a batch it took
//     from queue.
//   - The queue holds at most Options.SendQueue messages and
//     Options.SendQueueBytes bytes (one message always fits), so a slow
//     peer costs a bounded amount of memory; live Sends beyond that meet
//     Options.Overflow. Paced sends (catch-up) wait for room instead and
//     use at most half the queue, so live messages keep room of their own.
//   - Something to write always has a writer on its way, except during the
//     first slowCallback of a callback, whose goroutine writes when it
//     returns (saving a goroutine switch per reply); the slow timer starts
//     a writer if the callback runs on, and so does a queue half full.
//   - A sender may take the free writer role itself and try the queue on
//     the wire without waiting (writeSoonLocked); tail is then set when
//     the wire kept part of it, and the role stays taken, and passes to a
//     writer goroutine, until a Write has sent that part.
//   - Once broken, nothing more is written and the queue stays empty.
type sendQueue struct {
	queue    []Message
	spare    []Message // the other half of the double buffer
	bytes    int       // data bytes in queue
	writing  bool      // some goroutine holds the writer role
	tail     bool      // the wire holds part of a TryWrite: the next Write sends it
	broken   bool      // a write failed or the wire ended
	closeReq *CloseError
	overflow bool          // OverflowClose applied: the Send that set it reports and closes, the others only fail
	space    chan struct{} // closed when room appears: the writer took a batch, a session delivered, or the connection closed
	dropped  uint64
}

// send queues m under the overflow policy.
func (c *Conn) send(m Message, policy OverflowPolicy) error {
	c.mu.Lock()
	if err := c.queueLocked(m, policy); err != nil {
		return err
	}
	c.writeSoonLocked()
	return nil
}

// sendAll queues msgs in order under the overflow policy, as send does
// one by one, but has them written together. It returns how many were
// queued and, when that is not all, why the next one was not.
func (c *Conn) sendAll(msgs []Message, policy OverflowPolicy) (int, error) {
	c.mu.Lock()
	for i, m := range msgs {
		if err := c.queueLocked(m, policy); err != nil {
			if i > 0 {
				c.mu.Lock()
				c.writeSoonLocked()
			}
			return i, err
		}
	}
	c.writeSoonLocked()
	return len(msgs), nil
}

// queueLocked appends m to the queue under the overflow policy. It
// returns nil with c.mu still held, or an error with c.mu released.
func (c *Conn) queueLocked(m Message, policy OverflowPolicy) error {
	var deadline Timer
	var expired chan struct{}
	for {
		if c.state >= stateClosing {
			c.mu.Unlock()
			return ErrClosed
		}
		q := &c.out
		if len(q.queue) < c.opts.SendQueue && (len(q.queue) == 0 || q.bytes+len(m.Data) <= c.opts.SendQueueBytes) {
			break
		}
		switch policy {
		case OverflowDropOldest:
			q.bytes -= len(q.queue[0].Data)
			q.queue[0] = Message{}
			q.queue = q.queue[1:]
			q.dropped++
			c.mu.Unlock()
			c.observe(Event{Kind: EventOverflow, Policy: policy, N: 1})
			c.mu.Lock()
			continue
		case OverflowDropNewest:
			q.dropped++
			c.mu.Unlock()
			c.observe(Event{Kind: EventOverflow, Policy: policy, N: 1})
			return ErrQueueFull
		case OverflowBlock:
			if expired == nil {
				expired = make(chan struct{})
				deadline = c.opts.Clock.AfterFunc(c.opts.WriteTimeout, func() { close(expired) })
				defer deadline.Stop()
			}
			// Room comes only from a writer. During a callback the
			// writing may be left to the callback's goroutine, which
			// may be this one, blocked here: start a writer now.
			c.startWriterLocked()
			space := c.spaceLocked()
			c.mu.Unlock()
			select {
			case <-space:
			case <-expired:
				c.observe(Event{Kind: EventOverflow, Policy: policy, N: 1})
				return ErrQueueFull
			}
			c.mu.Lock()
			continue
		default: // OverflowClose
			first := !q.overflow
			q.overflow = true
			c.mu.Unlock()
			if first {
				c.observe(Event{Kind: EventOverflow, Policy: OverflowClose, N: 1})
				c.close(&CloseError{Code: ClosePolicyViolation, Reason: "send queue full", Err: ErrQueueFull}, false)
			}
			return ErrQueueFull
		}
	}
	c.out.queue = append(c.out.queue, m)
	c.out.bytes += len(m.Data)
	return nil
}

// writeSoonLocked has what is queued written: at once, on this goroutine,
// when the wire can write without waiting, nobody else holds the writer
// role and no callback runs (a callback's sends are written together, by
// its goroutine when it returns); otherwise by the writer kickLocked
// starts. Writing inline saves waking a goroutine per delivery. It
// releases c.mu.
func (c *Conn) writeSoonLocked() {
	q := &c.out
	if tw, ok := c.wire.(tryWriter); ok && !q.writing && !q.broken && q.closeReq == nil &&
		len(q.queue) > 0 && q.bytes <= maxTryBytes && !c.in.inCallback {
		q.writing = true
		c.mu.Unlock()
		c.flush(1, tw)
		return
	}
	c.kickLocked()
	c.mu.Unlock()
}

// maxTryBytes bounds what one inline write (writeSoonLocked) may carry:
// beyond it a writer goroutine takes the batch, so a sender never copies
// a large message into the wire's buffer to try it.
const maxTryBytes = 64 << 10

// tryWriter is wire.TryWriter: a wire that can write without waiting for
// the peer. When TryWrite reports false it keeps what it could not write,
// and the next Write, which the writer role then owes it, sends that
// first.
type tryWriter interface {
	TryWrite(msgs []Message) (bool, error)
}

// deferToCallbackLocked reports whether writing is left to the callback
// running now, which writes what is queued when it returns (see
// sendQueue).
func (c *Conn) deferToCallbackLocked() bool {
	return c.in.inCallback && !c.in.slow && 2*len(c.out.queue) < c.opts.SendQueue
}

// sendPaced queues msgs once the connection has room for them, waiting as
// long as the peer takes to read what is queued, until ctx ends or the
// connection closes. The overflow policy does not apply: this is how a
// catch-up streams at the peer's pace instead of overflowing the queue.
// Room means the batch fits in half the send queue, and, for a session,
// that its backlog of undelivered messages is below half the resume
// buffer (a detached session's backlog does not drain, so a catch-up
// waits for the client to come back instead of pushing history out of
// the backlog).
func (c *Conn) sendPaced(ctx context.Context, msgs []Message) error {
	size := 0
	for _, m := range msgs {
		size += len(m.Data)
	}
	c.mu.Lock()
	for !c.pacedRoomLocked(len(msgs), size) {
		if c.state >= stateClosing {
			c.mu.Unlock()
			return ErrClosed
		}
		space := c.spaceLocked()
		c.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	if c.state >= stateClosing {
		c.mu.Unlock()
		return ErrClosed
	}
	for _, m := range msgs {
		c.out.queue = append(c.out.queue, m)
		c.out.bytes += len(m.Data)
	}
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// pacedRoomLocked reports whether n messages of size bytes may join the
// queue as a paced batch.
func (c *Conn) pacedRoomLocked(n, size int) bool {
	q := &c.out
	if len(q.queue) > 0 && (2*(len(q.queue)+n) > c.opts.SendQueue || 2*(q.bytes+size) > c.opts.SendQueueBytes) {
		return false
	}
	if s := c.sess; s != nil && 2*(int(s.undelivered.Load())+len(q.queue)+n) > c.opts.ResumeBuffer && s.undelivered.Load() > 0 {
		return false
	}
	return true
}

// spaceLocked returns a channel closed when room appears.
func (c *Conn) spaceLocked() chan struct{} {
	if c.out.space == nil {
		c.out.space = make(chan struct{})
	}
	return c.out.space
}

// wakeSendersLocked releases the senders waiting for room.
func (c *Conn) wakeSendersLocked() {
	if c.out.space != nil {
		close(c.out.space)
		c.out.space = nil
	}
}

// wakeSenders is wakeSendersLocked for callers without the lock.
func (c *Conn) wakeSenders() {
	c.mu.Lock()
	c.wakeSendersLocked()
	c.mu.Unlock()
}

// kickLocked starts a writer goroutine when there is something to write
// and nobody to write it, unless a young callback will write it on return
// (see sendQueue).
func (c *Conn) kickLocked() {
	q := &c.out
	if q.writing || q.broken || c.wire == nil || len(q.queue) == 0 && q.closeReq == nil {
		return
	}
	if c.deferToCallbackLocked() {
		return
	}
	c.startWriterLocked()
}

// startWriterLocked starts a writer goroutine unless someone holds the
// role.
func (c *Conn) startWriterLocked() {
	q := &c.out
	if q.writing || q.broken || c.wire == nil {
		return
	}
	q.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

// takeWriterLocked gives the caller the writer role if there is something
// to write and nobody writing.
func (c *Conn) takeWriterLocked() bool {
	q := &c.out
	if q.writing || q.broken || c.wire == nil || len(q.queue) == 0 && q.closeReq == nil {
		return false
	}
	q.writing = true
	return true
}

func (c *Conn) writeLoop() {
	defer c.writers.Done()
	c.flush(-1, nil)
}

// flush writes queued messages, then the pending close, for at most
// maxRounds batches (negative: no bound) and hands what remains to a writer
// goroutine. The caller holds the writer role. With tw, the first batch
// is tried without waiting; what the wire keeps of it goes to the writer.
func (c *Conn) flush(maxRounds int, tw tryWriter) {
	for round := 0; ; round++ {
		c.mu.Lock()
		q := &c.out
		if q.broken {
			q.writing = false
			c.wakeSendersLocked()
			c.mu.Unlock()
			return
		}
		if len(q.queue) == 0 && !q.tail {
			q.writing = false
			c.wakeSendersLocked() // waitWritten waits for this
			ce := q.closeReq
			q.closeReq = nil
			w := c.wire
			c.mu.Unlock()
			if ce != nil {
				w.Close(ce.Code, ce.Reason)
			}
			return
		}
		if maxRounds >= 0 && round >= maxRounds {
			c.writers.Add(1)
			c.mu.Unlock()
			go c.writeLoop()
			return
		}
		batch := q.queue
		n, size := len(batch), q.bytes
		q.queue, q.spare = q.spare[:0], nil
		q.bytes = 0
		q.tail = false // this write sends it first
		c.wakeSendersLocked()
		w := c.wire
		c.mu.Unlock()

		done, err := true, error(nil)
		if tw != nil && round == 0 {
			done, err = tw.TryWrite(batch)
		} else {
			err = w.Write(batch)
		}
		clear(batch)

		c.mu.Lock()
		c.out.spare = batch[:0]
		c.out.tail = !done
		if err == nil {
			c.stats.out += int64(n)
			c.stats.outBytes += int64(size)
			if c.opts.Observer != nil {
				c.mu.Unlock()
				c.observe(Event{Kind: EventSend, N: n, Bytes: size})
				c.mu.Lock()
			}
		}
		if err != nil {
			c.out.writing = false
			c.wakeSendersLocked()
			c.mu.Unlock()
			c.close(writeFailure(err), false)
			return
		}
		c.mu.Unlock()
	}
}

// writeFailure is the cause of a close after a failed write.
func writeFailure(err error) *CloseError {
	ce := &CloseError{Code: CloseAbnormal, Reason: "write failed", Err: err}
	switch {
	case errors.Is(err, ErrWriteTimeout):
		ce.Reason = "write timeout"
	case errors.Is(err, ErrQueueFull):
		ce.Code, ce.Reason = ClosePolicyViolation, "send queue full"
	}
	return ce
}
