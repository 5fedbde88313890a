package realtime

import (
	"errors"
	"time"
)

// slowCallback is how long a callback may hold its goroutine before the
// connection stops waiting for it: a new goroutine takes over reading and
// what the callback sends is written at once instead of when it returns.
// It is a scheduling threshold, not a user-visible time, so it runs on the
// real clock.
const slowCallback = 2 * time.Millisecond

// errInboxFull is what a session answers a POST with while the handler is
// too far behind: the client retries later (429 with Retry-After).
var errInboxFull = errors.New("realtime: inbox full; retry later")

// job is one piece of handler work: Open, a message, or an Every tick.
type job struct {
	open bool
	tick *ticker
	m    Message
	done chan struct{} // closed once the job ran or was discarded; nil unless someone waits
}

// inbox is a connection's incoming side. Its fields are guarded by
// Conn.mu.
//
// Invariants:
//   - At most one goroutine holds the handler role (busy); only it runs
//     callbacks, one at a time, in the order of jobs. Close runs under the
//     role too (see finish), so callbacks never overlap.
//   - The role is released only with jobs empty: !busy implies no jobs.
//   - jobs holds at most Options.Inbox messages and Options.InboxBytes
//     bytes (one message always fits an empty inbox). A reader facing a
//     full inbox stops reading until there is room: TCP then pushes back
//     on the peer, and wires do not count the pause against the peer's
//     keepalive. A POST facing it is refused with errInboxFull. Ticks and
//     Open do not count: there is at most one of each per ticker.
//   - readerInline is set while the goroutine holding the role is the
//     connection's reader, running callbacks instead of reading. The slow
//     timer clears it and starts a new reader, and the old goroutine then
//     leaves once it has drained the inbox: the reader role moves, there
//     is never a second reader.
//   - Once the connection is closing, queued jobs are discarded: the peer
//     has gone or the handler has finished with it. A server shutdown is
//     the exception: the handler still gets the messages queued, which
//     the peer was told had arrived.
type inbox struct {
	jobs         []job // jobs[head:] wait, oldest first
	head         int
	msgs         int // messages in jobs
	bytes        int // their data bytes
	busy         bool
	inCallback   bool
	slow         bool // the running callback outlived slowCallback
	readerInline bool
	room         chan struct{} // closed when jobs shrink or the connection closes
	idle         chan struct{} // closed when the role is released
}

// fitsLocked reports whether one more message of n bytes fits beside
// extra messages of extraBytes already promised a place.
func (c *Conn) fitsLocked(n, extra, extraBytes int) bool {
	in := &c.in
	if in.msgs+extra == 0 {
		return true
	}
	return in.msgs+extra < c.opts.Inbox && in.bytes+extraBytes+n <= c.opts.InboxBytes
}

func (in *inbox) empty() bool { return in.head == len(in.jobs) }

// popLocked takes the oldest job; the array is reused once empty.
func (in *inbox) popLocked() job {
	j := in.jobs[in.head]
	in.jobs[in.head] = job{}
	in.head++
	if in.head == len(in.jobs) {
		in.jobs, in.head = in.jobs[:0], 0
	}
	return j
}

func (c *Conn) pushLocked(j job) {
	c.in.jobs = append(c.in.jobs, j)
	if j.tick == nil && !j.open {
		c.in.msgs++
		c.in.bytes += len(j.m.Data)
	}
}

// wakeRoomLocked releases readers and posters waiting for the inbox.
func (c *Conn) wakeRoomLocked() {
	if c.in.room != nil {
		close(c.in.room)
		c.in.room = nil
	}
}

// waitRoomLocked waits, without the lock, until the inbox shrinks or the
// connection closes.
func (c *Conn) waitRoomLocked() {
	if c.in.room == nil {
		c.in.room = make(chan struct{})
	}
	room := c.in.room
	c.mu.Unlock()
	<-room
	c.mu.Lock()
}

// readLoop is the reader role of a wire the core reads: it hands each
// message to the handler until the wire ends, then finishes the
// connection. It returns early when this goroutine lost the reader role
// to another one while it ran callbacks, and when the wire parked: the
// role then stays with the wire until it calls resumeRead.
func (c *Conn) readLoop() {
	p, _ := c.reader.(parker)
	var resume func()
	if p != nil {
		resume = c.resumeRead // made once, not per read
	}
	for {
		var m Message
		var err error
		if p != nil {
			var parked bool
			if m, parked, err = p.ReadOrPark(resume); parked {
				return
			}
		} else {
			m, err = c.reader.Read()
		}
		if err != nil {
			c.finish(err)
			return
		}
		if !c.received(m) {
			return
		}
	}
}

// resumeRead is the resume of a parked wire: the reader role on a new
// goroutine.
func (c *Conn) resumeRead() { go c.readLoop() }

// received hands a message from the reader to the handler: at once on
// this goroutine when the handler is idle, through the inbox otherwise,
// waiting while the inbox is full. It reports whether the caller still
// holds the reader role. Messages that arrive once the connection is
// closing are discarded.
func (c *Conn) received(m Message) bool {
	c.mu.Lock()
	c.countInLocked(m)
	paused := false
	for {
		if c.state >= stateClosing {
			c.mu.Unlock()
			return true // read on until the wire ends
		}
		if !c.in.busy {
			c.in.busy = true
			c.in.readerInline = true
			c.mu.Unlock()
			c.run(job{m: m})
			return c.drain(true)
		}
		if c.fitsLocked(len(m.Data), 0, 0) {
			break
		}
		if !paused {
			paused = true
			c.mu.Unlock()
			c.observe(Event{Kind: EventInboxFull})
			c.mu.Lock()
			continue
		}
		c.waitRoomLocked()
	}
	c.pushLocked(job{m: m})
	c.mu.Unlock()
	return true
}

// countInLocked counts a message from the peer.
func (c *Conn) countInLocked(m Message) {
	c.stats.in++
	c.stats.inBytes += int64(len(m.Data))
	if c.opts.Observer != nil {
		c.mu.Unlock()
		c.observe(Event{Kind: EventReceive, Bytes: len(m.Data)})
		c.mu.Lock()
	}
}

// receiveSync hands a message to the handler and returns once the
// handler has processed it, or the connection closed first. Wires the
// core does not read (request/response, the in-memory pipe) use it.
func (c *Conn) receiveSync(m Message) {
	c.mu.Lock()
	c.countInLocked(m)
	for {
		if c.state >= stateClosing {
			c.mu.Unlock()
			return
		}
		if !c.in.busy {
			c.in.busy = true
			c.mu.Unlock()
			c.run(job{m: m})
			c.drain(false)
			c.waitWritten()
			return
		}
		if c.fitsLocked(len(m.Data), 0, 0) {
			break
		}
		c.waitRoomLocked()
	}
	done := make(chan struct{})
	c.pushLocked(job{m: m, done: done})
	c.mu.Unlock()
	<-done
	c.waitWritten()
}

// waitWritten returns once what was queued so far has been written, or
// the wire failed: a transport that answers with what the handler sent
// (request/response) must not answer before a writer goroutine, which a
// slow callback's sends get, has finished.
func (c *Conn) waitWritten() {
	c.mu.Lock()
	for !c.out.broken && c.wire != nil && (c.out.writing || len(c.out.queue) > 0) {
		if !c.out.writing {
			c.out.writing = true
			c.mu.Unlock()
			c.flush(-1, nil)
			c.mu.Lock()
			continue
		}
		space := c.spaceLocked()
		c.mu.Unlock()
		<-space
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// inboxRoom reports how many more messages, and bytes, the inbox takes.
// Only sessions use it, under their own lock, so room can only grow
// between this and enqueue.
func (c *Conn) inboxRoom(extra, extraBytes, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= stateClosing {
		return ErrClosed
	}
	if !c.fitsLocked(n, extra, extraBytes) {
		return errInboxFull
	}
	return nil
}

// enqueue queues a message that already has its place (see inboxRoom)
// and starts a goroutine for the handler role if none holds it.
func (c *Conn) enqueue(m Message) {
	c.mu.Lock()
	c.countInLocked(m)
	if c.state >= stateClosing {
		c.mu.Unlock()
		return
	}
	c.pushLocked(job{m: m})
	if c.in.busy {
		c.mu.Unlock()
		return
	}
	c.in.busy = true
	c.mu.Unlock()
	go c.drain(false)
}

// drain runs the queued jobs, then releases the handler role. It reports
// whether the caller, if it was the reader (reader true), still is.
func (c *Conn) drain(reader bool) bool {
	for {
		c.mu.Lock()
		if c.state >= stateClosing && !c.shuttingDownLocked() {
			c.discardLocked()
		}
		if c.in.empty() {
			keep := reader && c.in.readerInline
			c.in.readerInline = false
			c.in.busy = false
			if c.in.idle != nil {
				close(c.in.idle)
				c.in.idle = nil
			}
			c.mu.Unlock()
			return keep
		}
		j := c.in.popLocked()
		if j.tick == nil && !j.open {
			c.in.msgs--
			c.in.bytes -= len(j.m.Data)
		}
		c.wakeRoomLocked()
		c.mu.Unlock()
		c.run(j)
	}
}

// shuttingDownLocked reports whether the connection closes because its
// server shuts down: then the messages already in its inbox, which the
// transport has acknowledged (a POST answered), still reach the handler
// before its Close, within Shutdown's context.
func (c *Conn) shuttingDownLocked() bool {
	return c.cause != nil && errors.Is(c.cause.Err, ErrServerClosed)
}

// discardLocked drops the queued jobs of a closing connection, except
// Open: a handler that was opened gets its Close, and Close never comes
// without Open.
func (c *Conn) discardLocked() {
	kept := c.in.jobs[:0]
	for _, j := range c.in.jobs[c.in.head:] {
		if j.open {
			kept = append(kept, j)
			continue
		}
		if j.done != nil {
			close(j.done)
		}
	}
	clear(c.in.jobs[len(kept):])
	c.in.jobs, c.in.head = kept, 0
	c.in.msgs, c.in.bytes = 0, 0
	c.wakeRoomLocked()
}

// run runs one job's callback under the handler role, with panics
// recovered and the slow timer armed, then writes what it queued.
func (c *Conn) run(j job) {
	c.mu.Lock()
	c.in.inCallback, c.in.slow = true, false
	c.mu.Unlock()
	watch := watchSlow(c)

	var err error
	switch {
	case j.open:
		err = c.protect(func() error { return c.handler().Open(c) })
	case j.tick != nil:
		err = c.protect(j.tick.run)
	default:
		err = c.protect(func() error { return c.handler().Message(c, j.m) })
	}
	watch.done()
	if err != nil {
		// Still in the callback, so the close is written below, on this
		// goroutine, like any close the callback asked for.
		c.close(c.failure(err), true)
	}

	c.mu.Lock()
	c.in.inCallback, c.in.slow = false, false
	write := c.takeWriterLocked()
	c.mu.Unlock()
	if j.done != nil {
		close(j.done)
	}
	if write {
		c.flush(1, nil)
	}
}

// onSlow runs when a callback outlives slowCallback: the connection stops
// waiting for it. A stale call, for a callback that has just returned,
// only makes the next one count as slow early, which is harmless.
func (c *Conn) onSlow() {
	c.mu.Lock()
	if !c.in.inCallback || c.in.slow {
		c.mu.Unlock()
		return
	}
	c.in.slow = true
	relieve := c.in.readerInline && c.reader != nil && c.state != stateClosed
	if relieve {
		c.in.readerInline = false
	}
	c.kickLocked()
	c.mu.Unlock()
	if relieve {
		go c.readLoop()
	}
}

// acquire takes the handler role, waiting for its holder to drain; finish
// uses it to run Close after every other callback.
func (c *Conn) acquire() {
	c.mu.Lock()
	for c.in.busy {
		if c.in.idle == nil {
			c.in.idle = make(chan struct{})
		}
		idle := c.in.idle
		c.mu.Unlock()
		<-idle
		c.mu.Lock()
	}
	c.in.busy = true
	c.mu.Unlock()
}
