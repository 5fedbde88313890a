package wire

import (
	"context"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Link is the transport's handle on one connection.
type Link struct {
	c *realtime.Conn
}

// Conn returns the connection.
func (l *Link) Conn() *realtime.Conn { return l.c }

// Abort gives back a connection that never opened.
func (l *Link) Abort() { core.Abort(l.c) }

// Start binds r, whose messages the core reads itself, and runs the
// connection on goroutines of the core's: Open, then a read loop that
// hands each message to the handler, and the end of the connection when
// Read fails. Start returns at once; the transport calls neither Receive
// nor Closed. The core reads on while a callback is slow, queueing
// messages in the connection's inbox and stopping when it is full.
func (l *Link) Start(r Reader) { core.Start(l.c, r) }

// Open binds w, a Conn the core does not read (request/response, the
// in-memory pipe), and runs the handler's Open on the calling goroutine:
// the transport then calls Receive for each message and Closed when the
// connection ends. If Open fails the core starts closing the connection.
func (l *Link) Open(w Conn) { core.Open(l.c, w) }

// Receive hands a message from the peer to the handler and returns when
// the handler has processed it and what it sent meanwhile has been
// written to the Conn (or the connection closed first), for connections
// opened with Open. Messages that arrive once the connection
// is closing are discarded.
func (l *Link) Receive(m realtime.Message) { core.Receive(l.c, m) }

// Closed reports that the connection opened with Open ended, with err as
// the cause when the core did not start the close itself (a
// *realtime.CloseError from the peer, or a network error; nil is a normal
// close, realtime.CloseNormal). It cancels the
// connection's context at once, closes w, stops the connection's timers
// and goroutines, runs the handler's Close exactly once and returns when
// all of that is done.
func (l *Link) Closed(err error) { core.Closed(l.c, err) }

// OpenSession opens a connection whose transport is made of requests
// (SSE, long-polling): the core keeps a session with a secret token bound
// to r's origin and identity and a backlog of sent messages, serves the
// client's POSTed messages and DELETE, and is the connection's Conn. The
// handler's Open runs on a goroutine of the core's, so the transport can
// answer r at once. The transport reads the backlog through Attach and
// never calls Receive or Closed. OpenSession returns the token, which the
// transport gives the client once, in the response to r, and never logs.
func (l *Link) OpenSession(r *http.Request) string { return core.OpenSession(l.c, r) }

// Attach starts reading the session: an SSE stream or a long-poll. It
// supersedes a current non-exclusive attachment (an SSE stream, perhaps
// one the client has already abandoned for another), whose Next then
// returns ErrSuperseded. While an exclusive attachment (a long-poll) is
// held, Attach fails with ErrConflict: one poll at a time, so a replayed
// request cannot steal another's messages. Detach it when the request
// ends.
func (l *Link) Attach(exclusive bool) (*Attachment, error) {
	gen, err := core.Attach(l.c, exclusive)
	if err != nil {
		return nil, err
	}
	return &Attachment{c: l.c, gen: gen}, nil
}

// Attachment is one request reading a session: a local one (c), or one
// followed on another node (ep, r, token).
type Attachment struct {
	c   *realtime.Conn
	gen uint64 // the local attachment's generation, or the one a follower's last read got

	ep      *Endpoint
	r       *http.Request
	token   string
	pending *Batch // read by Follow, not yet returned
}

// Entry is a message in a session's backlog with its sequence number, which
// starts at 1 and grows by one per message.
type Entry struct {
	Seq uint64
	realtime.Message
}

// Batch is what Attachment.Next returns: the messages after the cursor, in
// order, and whether anything was lost before them or the session closed.
type Batch struct {
	Entries []Entry
	// Gap is set when messages after the cursor had already left the
	// backlog: GapAfter is the cursor and the first entry follows a hole.
	// The backlog keeps Options.ResumeBuffer messages.
	Gap      bool
	GapAfter uint64
	// Close is set once the connection has closed and every entry was
	// handed out: the attachment delivers it and ends.
	Close *realtime.CloseError
}

// Next waits until there are entries after the cursor, the connection has
// closed, the attachment was superseded, or ctx ends, and returns them (at
// most a few hundred at a time). Returning an entry counts it as
// delivered.
func (a *Attachment) Next(ctx context.Context, after uint64) (Batch, error) {
	if a.c == nil {
		if b := a.pending; b != nil {
			a.pending = nil
			return *b, nil
		}
		return a.followNext(ctx, after, -1)
	}
	var b Batch
	gap, gapAfter, closed, err := core.Next(a.c, a.gen, ctx, after, func(seq uint64, m realtime.Message) {
		b.Entries = append(b.Entries, Entry{Seq: seq, Message: m})
	})
	if err != nil {
		return Batch{}, err
	}
	b.Gap, b.GapAfter, b.Close = gap, gapAfter, closed
	return b, nil
}

// Detach ends the attachment. A session left with no attachment waits
// Options.ResumeWindow for one before its connection closes with
// realtime.CloseAbnormal and the cause realtime.ErrResumeTimeout. (A
// followed session is attached on its node only while a read is held
// there.)
func (a *Attachment) Detach() {
	if a.c != nil {
		core.Detach(a.c, a.gen)
	}
}

// followNext reads a followed session from its node, waiting there up to
// hold (negative: as ctx allows).
func (a *Attachment) followNext(ctx context.Context, after uint64, hold time.Duration) (Batch, error) {
	var b Batch
	gap, gapAfter, closed, err := core.FollowNext(a.ep.rt, a.r, a.token, ctx, after, hold, &a.gen, func(seq uint64, m realtime.Message) {
		b.Entries = append(b.Entries, Entry{Seq: seq, Message: m})
	})
	if err != nil {
		return Batch{}, err
	}
	b.Gap, b.GapAfter, b.Close = gap, gapAfter, closed
	return b, nil
}
