package realtime

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// entry is a message in a session's backlog with its sequence number,
// which starts at 1 and grows by one per message.
type entry struct {
	seq uint64
	Message
}

// batch is what attachment reads return: the messages after the cursor,
// in order, and whether anything was lost before them or the session
// closed (see wire.Batch).
type batch struct {
	entries  []entry
	gap      bool
	gapAfter uint64
	close    *CloseError
}

// session is the transport-neutral state of a connection whose transport
// is made of requests (SSE, long-polling): a secret token, the backlog of
// sent messages that attachments read from, and the ordering of messages
// posted by the client. It is the connection's wireConn.
type session struct {
	c        *Conn
	token    string
	origin   string
	identity string

	mu        sync.Mutex
	entries   []entry // entries[0].seq is the oldest kept
	next      uint64  // seq of the next message
	delivered uint64  // highest seq handed to an attachment
	bytes     int
	wake      chan struct{} // closed when entries, deliveries, attachments or the close change

	// undelivered counts the entries no attachment has taken yet; it
	// changes under mu and is read without it by paced senders, which
	// wait while it is high (see Conn.sendPaced).
	undelivered atomic.Int64
	// dropped counts undelivered entries the full backlog discarded.
	dropped   atomic.Uint64
	closed    *CloseError
	attached  uint64 // generation of the current attachment; 0 = none
	exclusive bool   // the current attachment refuses others (long-poll)
	lastKind  attachKind
	gens      uint64
	grace     Timer // ends a detached session after ResumeWindow
	gone      bool  // removed from the route's table

	inMu         sync.Mutex // serialises posted messages
	inNext       uint64     // next expected client sequence number
	pending      map[uint64]Message
	pendingBytes int
}

var _ wireConn = (*session)(nil)

// newSession binds a new session to the request that opened it.
func newSession(c *Conn, r *http.Request) *session {
	s := &session{
		c:       c,
		token:   c.route.node + newToken(),
		origin:  c.route.originKey(r),
		next:    1,
		inNext:  1,
		wake:    make(chan struct{}),
		pending: map[uint64]Message{},
	}
	s.identity = c.route.identityOf(r)
	return s
}

// newToken returns 128 random bits, base32: the session's credential.
func newToken() string { return rand.Text() }

// bound reports whether r may act on the session: same identity, and the
// same origin the session was opened from. A request without an Origin
// header (browsers send none on same-origin GETs) and one whose Origin is
// the route's own host both count as the route's own origin.
func (s *session) bound(r *http.Request) bool {
	return s.c.route.identityOf(r) == s.identity && s.c.route.originKey(r) == s.origin
}

// originKey is the origin a session is bound to: "" for the route's own,
// else the foreign origin the route allowed.
func (rt *Route) originKey(r *http.Request) string {
	o := r.Header.Get("Origin")
	if o == "" || rt.sameOrigin(r) {
		return ""
	}
	return o
}

// Write appends msgs to the backlog; attachments write to the network at
// their own pace. The backlog keeps Options.ResumeBuffer messages (and at
// most Options.SendQueueBytes bytes). When it is full:
//   - messages already handed to an attachment make room first: they are
//     kept only for a resume;
//   - while an attachment is reading, Write waits for it to take some, as
//     a socket write waits for the peer (the attachment's own writes are
//     bounded by WriteTimeout, so this wait is too); meanwhile the send
//     queue fills and Options.Overflow judges the slow reader;
//   - while no attachment is reading (a dropped stream, the time between
//     two polls), or under OverflowDropOldest, the oldest message goes:
//     the client is told of the gap when it resumes.
//
// Write never closes the connection for a client that is away.
func (s *session) Write(msgs []Message) error {
	o := s.c.opts
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		for {
			if s.closed != nil {
				return ErrClosed
			}
			if len(s.entries) == 0 || len(s.entries) < o.ResumeBuffer && s.bytes+len(m.Data) <= o.SendQueueBytes {
				break
			}
			if s.entries[0].seq <= s.delivered || o.Overflow == OverflowDropOldest || s.attached == 0 {
				s.dropOldestLocked()
				continue
			}
			s.signalLocked() // let the attachment take what is there
			wake := s.wake
			s.mu.Unlock()
			<-wake
			s.mu.Lock()
		}
		s.entries = append(s.entries, entry{seq: s.next, Message: m})
		s.next++
		s.bytes += len(m.Data)
		s.undelivered.Add(1)
	}
	s.signalLocked()
	return nil
}

// dropOldestLocked removes the oldest entry of the backlog.
func (s *session) dropOldestLocked() {
	e := s.entries[0]
	s.bytes -= len(e.Data)
	if e.seq > s.delivered {
		s.undelivered.Add(-1)
		s.dropped.Add(1)
	}
	s.entries[0] = entry{}
	s.entries = s.entries[1:]
}

func (s *session) signalLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Close records the close for attachments to deliver and ends the
// connection: its handler's Close runs. The session stays reachable for
// ResumeWindow so that a client that was between requests learns the code.
func (s *session) Close(code int, reason string) error {
	s.mu.Lock()
	if s.closed != nil {
		s.mu.Unlock()
		return nil
	}
	s.closed = &CloseError{Code: code, Reason: reason}
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	c := s.c
	if errors.Is(c.Cause(), ErrResumeTimeout) {
		// Nobody came for ResumeWindow: nobody is left to tell.
		s.gone = true
		s.signalLocked()
		s.mu.Unlock()
		c.route.forget(s.token)
	} else {
		// A client between requests learns the close on its next one.
		s.grace = c.opts.Clock.AfterFunc(c.opts.ResumeWindow, s.forget)
		s.signalLocked()
		s.mu.Unlock()
	}
	c.mu.Lock()
	finishing := c.state == stateClosed
	c.mu.Unlock()
	if !finishing {
		// Close runs inside the writer role, and ending the connection
		// waits for writers, so it happens on its own goroutine, which
		// returns as soon as the handler's Close has.
		go c.finish(nil)
	}
	return nil
}

// forget removes the session from the route's table.
func (s *session) forget() {
	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	s.c.route.forget(s.token)
}

// detachedTimeout ends a session that no transport resumed in time.
func (s *session) detachedTimeout() {
	s.c.observe(Event{Kind: EventExpire})
	s.c.finish(&CloseError{Code: CloseAbnormal, Reason: "connection lost", Err: ErrResumeTimeout})
}

// attachKind is what reads a session: an SSE stream, a long-poll, or
// another node following the session for a client that came back there.
type attachKind int

const (
	attachStream attachKind = iota + 1
	attachPoll
	attachFollow
)

// attach starts a reader of the session and returns its generation,
// which names it to read and detach. It supersedes a current
// non-exclusive attachment (a stream, perhaps one the client has already
// abandoned for another, or a follower), whose read then returns
// ErrSuperseded. While a poll is held, attach fails with ErrConflict: one
// poll at a time, so a replayed request cannot steal another's messages.
func (s *session) attach(kind attachKind) (uint64, error) {
	return s.attachAfter(kind, 0)
}

// attachAfter is attach for a follower's next read: prev is the
// generation of its previous read (0 for its first), and if anything
// attached since, the follower was superseded (ErrSuperseded): a
// follower whose client left must not take the session back from the
// one its client came back through.
func (s *session) attachAfter(kind attachKind, prev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, protocol.ErrUnknownSession
	}
	if prev != 0 && s.gens != prev {
		return 0, protocol.ErrSuperseded
	}
	if s.attached != 0 && s.exclusive {
		return 0, protocol.ErrConflict
	}
	s.gens++
	// A client coming back: a new stream, the first poll after a stream;
	// not long-polling's every poll. (A follower's reads do not count:
	// the follower says when it is a client coming back; see serveRead.)
	resumed := s.gens > 1 && (kind == attachStream || kind == attachPoll && s.lastKind != attachPoll)
	s.attached = s.gens
	s.exclusive = kind == attachPoll
	s.lastKind = kind
	if s.grace != nil && s.closed == nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.signalLocked() // wakes a superseded attachment
	if resumed {
		s.c.observe(Event{Kind: EventResume})
	}
	return s.gens, nil
}

// maxBatch bounds the entries one read returns, so that a stream far
// behind catches up in writes of bounded size.
const maxBatch = 256

// read waits until there are entries after the cursor, the connection
// has closed, the attachment gen was superseded, or ctx ends, and returns
// them. Returning an entry counts it as delivered.
func (s *session) read(ctx context.Context, gen, after uint64) (batch, error) {
	for {
		s.mu.Lock()
		if s.attached != gen {
			s.mu.Unlock()
			return batch{}, protocol.ErrSuperseded
		}
		if after >= s.next {
			after = s.next - 1 // a cursor from the future: nothing was missed
		}
		var b batch
		i := 0
		if len(s.entries) > 0 {
			first := s.entries[0].seq
			if after+1 < first {
				b.gap, b.gapAfter = true, after
			} else {
				i = int(after + 1 - first)
			}
		} else if after+1 < s.next {
			b.gap, b.gapAfter = true, after
		}
		end := min(len(s.entries), i+maxBatch)
		taken := false
		if i < end {
			b.entries = append([]entry(nil), s.entries[i:end]...)
			if last := b.entries[len(b.entries)-1].seq; last > s.delivered {
				s.undelivered.Add(-int64(min(last, s.next-1) - max(s.delivered, s.entries[0].seq-1)))
				s.delivered = last
				s.signalLocked() // a Write may wait for room
				taken = true
			}
		}
		if s.closed != nil && end == len(s.entries) {
			b.close = s.closed
		}
		if len(b.entries) > 0 || b.gap || b.close != nil {
			s.mu.Unlock()
			if taken {
				s.c.wakeSenders() // a catch-up may wait for the backlog to drain
			}
			if b.gap {
				s.c.observe(Event{Kind: EventGap})
			}
			return b, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return batch{}, ctx.Err()
		}
	}
}

// detach ends the attachment gen. A session left with no attachment waits
// Options.ResumeWindow for one before its connection closes with
// CloseAbnormal and the cause ErrResumeTimeout.
func (s *session) detach(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached != gen {
		return
	}
	s.attached = 0
	s.exclusive = false
	s.signalLocked() // a Write waiting for this attachment drops instead
	if s.closed == nil && s.grace == nil {
		s.grace = s.c.opts.Clock.AfterFunc(s.c.opts.ResumeWindow, s.detachedTimeout)
	}
}

// post accepts a message the client posted into the handler's inbox, in
// the client's order, and returns without waiting for the handler: with a
// sequence number (seq > 0) it is delivered exactly once, after every
// lower one, and duplicates are ignored; without one (seq == 0) it is
// delivered on arrival. It returns errInboxFull, and accepts nothing, when
// the inbox has no room (counting the messages held back for a lower
// sequence number): the client retries the same seq later.
func (s *session) post(seq uint64, m Message) error {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	c := s.c
	if seq == 0 {
		if err := c.inboxRoom(len(s.pending), s.pendingBytes, len(m.Data)); err != nil {
			return err
		}
		c.enqueue(m)
		return nil
	}
	switch {
	case seq < s.inNext:
		return nil // a retry of an accepted message
	case seq > s.inNext:
		if _, dup := s.pending[seq]; dup {
			return nil
		}
		if seq-s.inNext > maxPending || len(s.pending) >= maxPending {
			return errTooFarAhead
		}
		if err := c.inboxRoom(len(s.pending), s.pendingBytes, len(m.Data)); err != nil {
			return err
		}
		s.pending[seq] = m
		s.pendingBytes += len(m.Data)
		return nil
	}
	if err := c.inboxRoom(len(s.pending), s.pendingBytes, len(m.Data)); err != nil {
		return err
	}
	c.enqueue(m)
	s.inNext++
	for {
		m, ok := s.pending[s.inNext]
		if !ok {
			return nil
		}
		delete(s.pending, s.inNext)
		s.pendingBytes -= len(m.Data)
		c.enqueue(m) // its place was counted when it arrived
		s.inNext++
	}
}

// maxPending bounds the posted messages held back waiting for a lower
// sequence number.
const maxPending = 64

var errTooFarAhead = errors.New("realtime: message sequence number too far ahead")

// attachTimeout bounds how long a new session waits for its first
// attachment (the stream that opened it, or a first poll, which clients
// send at once).
const attachTimeout = 10 * time.Second

// minFirstAttach is the least a new session waits for its first
// attachment, however short the resume window: it covers the gap between
// opening a session and attaching the stream that opened it, or the
// client's first poll, on a loaded machine.
const minFirstAttach = time.Second

// firstAttachWait is how long a new session waits for its first
// attachment: the resume window, within [minFirstAttach, attachTimeout].
func firstAttachWait(resume time.Duration) time.Duration {
	return max(min(resume, attachTimeout), minFirstAttach)
}

// errNoSession is what attaching to a connection that is not a session
// returns.
var errNoSession = errors.New("realtime: not a session")

// openSession makes c a session bound to r, registers its token with the
// route and runs Open on a goroutine of its own (see wire.Link), and
// returns the token.
func (c *Conn) openSession(r *http.Request) string {
	s := newSession(c, r)
	c.sess = s
	rt := c.route
	rt.mu.Lock()
	rt.sessions[s.token] = s
	rt.mu.Unlock()
	// Until a transport attaches, the session is as good as dropped: a
	// client that opens a long-poll session and never polls holds it (and
	// its place under the caps) for attachTimeout at most.
	s.mu.Lock()
	s.grace = c.opts.Clock.AfterFunc(firstAttachWait(c.opts.ResumeWindow), s.detachedTimeout)
	s.mu.Unlock()
	c.startSession(s)
	return s.token
}
