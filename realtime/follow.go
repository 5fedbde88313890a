package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// A session lives on the node that opened it: its handler, its Conn and
// its backlog are there. A client that comes back to another node (a
// plain round-robin balancer, a node's address that changed) is served
// there by following the session on its owner through Options.Relay:
// each read is a relayed request that attaches to the session on the
// owner, waits there for entries like a long-poll, and answers them; the
// following node writes them to its client. POST-backs and DELETEs are
// forwarded to the owner as before. So a stream resumes on any node, in
// order and exactly once within the backlog, with a gap beyond it, and no
// balancer needs sticky sessions.

// methodRead is the method of a relayed session read; no HTTP request
// has it, so it never reaches a transport.
const methodRead = "RTKIT-READ"

// relayedBatch is the answer to a relayed read.
type relayedBatch struct {
	Status   int            `json:"status"` // http.StatusOK, or the refusal (404 for an unknown session, 409 superseded)
	Entries  []relayedEntry `json:"entries,omitempty"`
	Gap      bool           `json:"gap,omitempty"`
	GapAfter uint64         `json:"gapAfter,omitempty"`
	Close    *relayedClose  `json:"close,omitempty"`
	Gen      uint64         `json:"gen,omitempty"` // the read's attachment, for the follower's next read
}

type relayedEntry struct {
	Seq    uint64 `json:"seq"`
	Binary bool   `json:"binary,omitempty"`
	Data   []byte `json:"data"`
}

type relayedClose struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// headerHold carries how long a relayed read may wait for entries, in
// milliseconds; 0 is the first read of a follower (wire.Endpoint.Follow),
// which finds out whether the session is there.
const headerHold = "Rtkit-Hold"

// headerFollowGen carries the generation a follower's previous read got
// (relayedBatch.Gen), on every read after its first: a read is refused
// as superseded when anything attached to the session since.
const headerFollowGen = "Rtkit-Follow-Gen"

// follows reports whether r names, by token, a session this route can
// follow on another node.
func (rt *Route) follows(token string) bool {
	return rt.opts.Relay != nil && len(token) > nodeIDLen && !rt.owns(token)
}

// followNext reads the session that token names on its owner: the
// entries after after, waiting there up to hold for some (a negative hold:
// as long as ctx leaves, at most PingInterval), as Attachment.Next does
// for a local session. *gen is the generation of the follower's previous
// read (0 before its first), and is set to this one's.
func (rt *Route) followNext(ctx context.Context, r *http.Request, token string, after uint64, hold time.Duration, gen *uint64, each func(uint64, Message)) (gap bool, gapAfter uint64, closed *CloseError, err error) {
	if hold < 0 {
		hold = max(rt.opts.PingInterval, time.Second)
		if d, ok := ctx.Deadline(); ok {
			hold = min(hold, time.Until(d))
		}
	}
	h := r.Header.Clone()
	h.Set(HeaderToken, token)
	h.Set(headerHold, strconv.FormatInt(hold.Milliseconds(), 10))
	h.Set("Realtime-Ack", strconv.FormatUint(after, 10))
	h.Del(headerFollowGen)
	if *gen != 0 {
		h.Set(headerFollowGen, strconv.FormatUint(*gen, 10))
	}
	scheme, host := rt.target(r)
	req, _ := json.Marshal(relayed{Method: methodRead, URL: r.URL.RequestURI(), Host: host, Header: h, Identity: rt.identityOf(r), Scheme: scheme})
	rctx, cancel := context.WithTimeout(ctx, hold+relayMargin)
	defer cancel()
	start := time.Now()
	out, err := rt.opts.Relay.Request(rctx, nodeSubject(token[:nodeIDLen]), req)
	rt.observe(Event{Kind: EventRelay, Route: rt.nameOf(r), Transport: SSE, Duration: time.Since(start), Err: err})
	if err != nil {
		if errors.Is(err, ErrUnknownNode) {
			return false, 0, nil, protocol.ErrUnknownSession
		}
		if ctx.Err() != nil {
			return false, 0, nil, ctx.Err()
		}
		return false, 0, nil, err
	}
	var b relayedBatch
	if err := json.Unmarshal(out, &b); err != nil {
		return false, 0, nil, errors.New("realtime: malformed relay answer")
	}
	switch b.Status {
	case http.StatusOK:
		if b.Gen != 0 {
			*gen = b.Gen
		}
	case http.StatusConflict:
		return false, 0, nil, protocol.ErrSuperseded
	default:
		return false, 0, nil, protocol.ErrUnknownSession
	}
	for _, e := range b.Entries {
		m := Message{Type: TextMessage, Data: e.Data}
		if e.Binary {
			m.Type = BinaryMessage
		}
		each(e.Seq, m)
	}
	if b.Close != nil {
		closed = &CloseError{Code: b.Close.Code, Reason: b.Close.Reason}
	}
	if len(b.Entries) == 0 && !b.Gap && closed == nil {
		return false, 0, nil, context.DeadlineExceeded // the hold ran out: as a local Next would say
	}
	return b.Gap, b.GapAfter, closed, nil
}

// serveRead answers a relayed read of one of this route's sessions: it
// attaches to the session, waits up to the hold for entries after the
// ack, and detaches.
func (rt *Route) serveRead(r *http.Request) relayedBatch {
	s, err := rt.session(r, r.Header.Get(HeaderToken))
	if err != nil {
		return relayedBatch{Status: http.StatusNotFound}
	}
	after, _ := strconv.ParseUint(r.Header.Get("Realtime-Ack"), 10, 64)
	hold, _ := strconv.ParseInt(r.Header.Get(headerHold), 10, 64)
	prev, _ := strconv.ParseUint(r.Header.Get(headerFollowGen), 10, 64)
	gen, err := s.attachAfter(attachFollow, prev)
	if err != nil {
		return relayedBatch{Status: http.StatusConflict}
	}
	if r.Header.Get(headerHold) == "0" {
		s.c.observe(Event{Kind: EventResume}) // a follower's first read: the client came back
	}
	defer s.detach(gen)
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(max(hold, 0))*time.Millisecond)
	defer cancel()
	b, err := s.read(ctx, gen, after)
	switch {
	case errors.Is(err, protocol.ErrSuperseded):
		return relayedBatch{Status: http.StatusConflict}
	case err != nil:
		return relayedBatch{Status: http.StatusOK, Gen: gen} // the hold ran out: nothing yet
	}
	out := relayedBatch{Status: http.StatusOK, Gap: b.gap, GapAfter: b.gapAfter, Gen: gen}
	for _, e := range b.entries {
		out.Entries = append(out.Entries, relayedEntry{Seq: e.seq, Binary: e.Type == BinaryMessage, Data: e.Data})
	}
	if b.close != nil {
		out.Close = &relayedClose{Code: b.close.Code, Reason: b.close.Reason}
	}
	return out
}
