package topics

import (
	"context"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// maxTopicQueue bounds the entries a topic holds between its broker and
// its pump. Beyond it entries are dropped here and fetched back from the
// broker's history, as after an outage.
const maxTopicQueue = 8192

// brokerTimeout bounds the broker calls a topic makes on its own.
const brokerTimeout = 10 * time.Second

// catchUpChunk is the most history entries a catch-up reads from the
// broker at a time.
const catchUpChunk = 64

// maxStale is how many times in a row a catch-up asks again a broker
// whose history lags what it has delivered live, before it takes the
// answer (and reports what is missing as a gap).
const maxStale = 8

// maxAhead is how many times in a row a catch-up asks again a broker
// whose history ends before the position the client resumes from (100 ms,
// 200 ms, 400 ms apart), before it takes the topic for one that started
// again (and sends a gap).
const maxAhead = 3

// topic is one topic's state on this node: its local subscribers and the
// pump, one goroutine per topic, that hands live entries to them in order.
//
// Invariants:
//   - started is closed once the broker subscription is up or has failed
//     (err says why); nobody joins subs before, and a failed topic is
//     removed from Topics so the next subscriber tries afresh.
//   - last is the newest seq handed to the fan-out; it changes together
//     with the snapshot of ready subscribers (under mu), so a subscriber
//     that turns ready with after >= last misses nothing: the pump sends
//     it every later entry.
//   - A subscriber is ready (receives live entries) only once its
//     catch-up has sent everything up to last, at the pace its connection
//     writes; live entries never wait in memory for a catch-up.
//   - Once retired (its last local subscriber gone, or its start failed)
//     a topic takes no subscribers and its broker subscription is closed.
type topic struct {
	ts      *Topics
	name    string
	started chan struct{}
	err     error // why the start failed; written before started closes

	mu      sync.Mutex
	subs    map[*realtime.Conn]*subscriber
	members map[string]*subscriber // the subscribers that joined, by member id
	queue   []Entry
	wake    chan struct{} // closed when queue grows or the topic retires
	last    uint64
	retired bool
	sub     Subscription

	stateMu   sync.Mutex // guards the presence state cache; see presenceState
	stateMsg  realtime.Message
	stateAt   uint64 // t.last when stateMsg's read started
	stateOK   bool
	stateRead *stateRead // the read in flight
	stateNext *stateRead // the read that starts when it ends
}

type subscriber struct {
	c      *realtime.Conn
	after  uint64 // the last seq this connection was given
	ready  bool   // caught up: receives live entries
	state  bool   // sends the presence state once caught up (Join)
	member *Member
	unhook func()
}

// start subscribes to the broker and runs the pump. It is called once,
// by whoever created the topic.
func (t *topic) start() {
	defer close(t.started)
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	sub, err := t.ts.b.Subscribe(ctx, t.name, t.push)
	var h History
	if err == nil {
		if h, err = t.ts.b.History(ctx, t.name, math.MaxUint64, 1); err != nil {
			sub.Close()
		}
	}
	if err != nil {
		t.err = err
		t.mu.Lock()
		t.retired = true
		t.mu.Unlock()
		t.ts.drop(t)
		return
	}
	t.mu.Lock()
	t.sub, t.last = sub, h.Last
	retired := t.retired
	t.mu.Unlock()
	if retired {
		sub.Close()
		return
	}
	go t.pump()
}

// add registers c from seq after. With resume it first catches c up on
// what it missed, on a goroutine of the connection's; without, c receives
// what comes from now on. It reports false if the topic retired first.
func (t *topic) add(c *realtime.Conn, after uint64, resume, state bool) bool {
	t.mu.Lock()
	if t.retired {
		t.mu.Unlock()
		return false
	}
	if _, dup := t.subs[c]; dup {
		t.mu.Unlock()
		return true
	}
	s := &subscriber{c: c, after: after, state: state && resume}
	if !resume {
		s.after, s.ready = t.last, true
	}
	t.subs[c] = s
	t.mu.Unlock()

	// On a connection that has already ended this runs remove at once.
	s.unhook = core.OnClose(c, func() { t.remove(c) })
	if resume {
		c.Go(func(context.Context) error {
			t.catchUp(s)
			return nil
		})
	}
	return true
}

// push queues an entry from the broker for the pump.
func (t *topic) push(e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired || len(t.queue) >= maxTopicQueue {
		return // dropped entries come back from the history
	}
	t.queue = append(t.queue, e)
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// pump hands entries to ready subscribers in order until the topic
// retires.
func (t *topic) pump() {
	var out []outgoing
	for {
		t.mu.Lock()
		for len(t.queue) == 0 && !t.retired {
			wake := make(chan struct{})
			t.wake = wake
			t.mu.Unlock()
			<-wake
			t.mu.Lock()
		}
		if t.retired {
			t.mu.Unlock()
			return
		}
		entries := t.queue
		t.queue = nil
		last := t.last
		t.mu.Unlock()
		out = out[:0]
		for _, e := range entries {
			out, last = t.deliver(out, e, last)
		}
		t.fanout(out, last)
		t.reassert(entries)
	}
}

// reassert joins again the members of this node that a diff says left
// while their connection is still subscribed: their presence expired
// during a broker outage longer than the presence TTL, and another node
// published their leave. Their own leaves never get here with them
// subscribed: remove forgets a member before it leaves.
func (t *topic) reassert(entries []Entry) {
	for _, e := range entries {
		if e.Type != PresenceMessage {
			continue
		}
		for _, m := range decodeDiff(e.Data).Leaves {
			t.mu.Lock()
			s := t.members[m.ID]
			t.mu.Unlock()
			if s == nil {
				continue
			}
			mine := *s.member
			s.c.Go(func(ctx context.Context) error {
				if err := t.ts.setMember(ctx, t.name, mine); err != nil {
					return nil // the connection's next refresh or rejoin
				}
				t.mu.Lock()
				still := t.members[mine.ID] == s
				t.mu.Unlock()
				if still {
					t.ts.queuePresence(t.name, mine, true)
				} else {
					t.ts.leave(t.name, mine) // it left meanwhile: undo the set
				}
				return nil
			})
		}
	}
}

// outgoing is an envelope ready for fan-out: a message of seq, or a gap
// (with reset, the topic's numbering started again after seq).
type outgoing struct {
	m     realtime.Message
	seq   uint64
	gap   bool
	reset bool
}

// wasReset reports whether the broker's topic is behind last, the seq
// this node handed out: its numbering started again. It costs a broker
// call, made only for an entry at or below last (rare: a duplicate after
// an outage, or a reset).
func (t *topic) wasReset(last uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	h, err := t.ts.b.History(ctx, t.name, math.MaxUint64, 1)
	return err == nil && h.Last < last
}

// deliver appends e's envelope to out, after what the broker skipped (an
// outage, an overflow), fetched from the history, and returns the new last
// seq.
func (t *topic) deliver(out []outgoing, e Entry, last uint64) ([]outgoing, uint64) {
	if e.Seq <= last {
		if !t.wasReset(last) {
			return out, last // already handed out
		}
		// The topic started again (its history aged out, or a broker lost
		// it): every subscriber hears so, then follows the new numbering.
		t.ts.logger.Warn("realtime: topic started again", "topic", t.name, "after", last)
		last = e.Seq - 1
		out = append(out, outgoing{m: gapEnvelope(t.name, last), seq: last, gap: true, reset: true})
	}
	if e.Seq > last+1 {
		h, err := t.fill(last, e.Seq)
		if err != nil || h.Gap {
			t.ts.logger.Warn("realtime: topic messages lost", "topic", t.name, "after", last, "err", err)
			out = append(out, outgoing{m: gapEnvelope(t.name, last), gap: true})
		}
		for _, he := range h.Entries {
			if he.Seq > last && he.Seq < e.Seq {
				out = append(out, outgoing{m: envelope(t.name, he, true), seq: he.Seq})
				last = he.Seq
			}
		}
	}
	return append(out, outgoing{m: envelope(t.name, e, true), seq: e.Seq}), e.Seq
}

// fill fetches from the history what the broker's delivery skipped
// between last and seq (an outage, an overflow). A broker that fails the
// request may be reconnecting after the very outage that made it skip:
// fill asks again, up to fillTries times 100 ms to 800 ms apart, before
// the skipped entries count as lost. The pump, and so live delivery,
// waits meanwhile, as it would for the broker anyway.
func (t *topic) fill(last, seq uint64) (History, error) {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		h, err := t.ts.b.History(ctx, t.name, last, int(seq-last-1))
		cancel()
		if err == nil || try >= fillTries {
			return h, err
		}
		t.mu.Lock()
		retired := t.retired
		t.mu.Unlock()
		if retired {
			return h, err
		}
		time.Sleep(backoff(try - 1))
	}
}

// fillTries bounds the history requests of one fill.
const fillTries = 5

// fanout sends a batch to every ready subscriber, each its part (what it
// has not seen), connection by connection: a connection's writer then
// finds the whole batch queued and writes it at once. last becomes the
// topic's last in the same step as the snapshot of ready subscribers.
func (t *topic) fanout(out []outgoing, last uint64) {
	type send struct {
		s    *subscriber
		from int // index in out of the first envelope it gets
	}
	reset := -1 // index in out of the last reset
	for i, o := range out {
		if o.reset {
			reset = i
		}
	}
	t.mu.Lock()
	if reset >= 0 {
		t.last = last
	} else {
		t.last = max(t.last, last)
	}
	if len(out) == 0 {
		t.mu.Unlock()
		return
	}
	sends := make([]send, 0, len(t.subs))
	for _, s := range t.subs {
		if !s.ready {
			continue
		}
		from := 0
		for from < len(out) && !out[from].gap && out[from].seq <= s.after {
			from++
		}
		if from == len(out) {
			continue
		}
		sends = append(sends, send{s, from})
		if last > s.after || reset >= from {
			s.after = last
		}
	}
	t.mu.Unlock()
	deliver := func(sends []send) {
		msgs := make([]realtime.Message, 0, len(out))
		for _, sd := range sends {
			msgs = msgs[:0]
			for _, o := range out[sd.from:] {
				msgs = append(msgs, o.m)
			}
			n, _ := core.SendLive(sd.s.c, msgs)
			for _, o := range out[sd.from : sd.from+n] {
				if o.gap {
					core.Observe(sd.s.c, realtime.Event{Kind: realtime.EventGap})
				}
			}
		}
	}
	// A send may write to the socket on this goroutine (see
	// realtime.Conn.Send): a large fan-out is split between a few
	// goroutines, each its own share of the connections, so that it uses
	// every core. Each connection is in one share, in order.
	w := min(runtime.GOMAXPROCS(0), len(sends)/fanoutShare)
	if w <= 1 {
		deliver(sends)
		return
	}
	var wg sync.WaitGroup
	share := (len(sends) + w - 1) / w
	for i := share; i < len(sends); i += share {
		part := sends[i:min(i+share, len(sends))]
		wg.Go(func() { deliver(part) })
	}
	deliver(sends[:share])
	wg.Wait()
}

// fanoutShare is the fewest connections a fan-out goroutine serves.
const fanoutShare = 512

// catchUp walks the topic's history from s.after as a cursor, a chunk at
// a time, each chunk queued only once the connection has room for it (so
// the catch-up goes as fast as the peer reads, however long it is), and
// makes s ready once it has reached the live position. History the
// broker no longer keeps becomes a gap envelope, never a close.
func (t *topic) catchUp(s *subscriber) {
	c := s.c
	ctx := c.Context()
	chunk := max(1, min(catchUpChunk, core.ConnOptions(c).SendQueue/2))
	after := s.after
	stateSent := !s.state
	clock := core.ConnOptions(c).Clock
	start := clock.Now()
	sent, gaps := 0, 0 // history entries and gap envelopes queued
	defer func() {
		for range gaps {
			core.Observe(c, realtime.Event{Kind: realtime.EventGap})
		}
		if sent > 0 {
			core.Observe(c, realtime.Event{Kind: realtime.EventCatchUp, N: sent, Duration: clock.Now().Sub(start)})
		}
	}()
	for failures, stale, ahead := 0, 0, 0; ; {
		// What the pump fanned out before this read is in its answer;
		// what it fans out meanwhile may not be.
		t.mu.Lock()
		known := t.last
		t.mu.Unlock()
		h, err := t.ts.b.History(ctx, t.name, after, chunk)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			t.ts.logger.Warn("realtime: topic catch-up waits for the broker", "topic", t.name, "err", err)
			if !sleepCtx(ctx, backoff(failures)) {
				return
			}
			continue
		}
		if h.Last < known && stale < maxStale {
			// The broker's history has not caught up with what it
			// already delivered live (a store that lags its delivery, a
			// server still loading after a restart): ask again.
			stale++
			if !sleepCtx(ctx, backoff(stale)) {
				return
			}
			continue
		}
		if after > h.Last && ahead < maxAhead {
			// The client has seen more than the history holds: it may
			// have seen it live, here or on another node, before the
			// store caught up. Ask again before taking it for a topic
			// that started again.
			ahead++
			if !sleepCtx(ctx, backoff(ahead-1)) {
				return
			}
			continue
		}
		failures, stale, ahead = 0, 0, 0
		var batch []realtime.Message
		bsent, bgaps := 0, 0
		if after > h.Last {
			// A position from the future: the topic started again.
			after = h.Last
			batch = append(batch, gapEnvelope(t.name, after))
			bgaps++
		}
		progressed := false
		if h.Gap {
			batch = append(batch, gapEnvelope(t.name, after))
			bgaps++
			if len(h.Entries) == 0 {
				after, progressed = h.Last, true
			}
		}
		for _, e := range h.Entries {
			if e.Seq > after {
				// A joiner gets the presence state once caught up: the
				// diffs before it would say nothing it does not say.
				if stateSent || e.Type != PresenceMessage {
					batch = append(batch, envelope(t.name, e, false))
					bsent++
				}
				after, progressed = e.Seq, true
			}
		}
		if len(batch) > 0 {
			if err := core.SendPaced(c, ctx, batch); err != nil {
				return
			}
			sent, gaps = sent+bsent, gaps+bgaps
		}
		t.mu.Lock()
		if t.subs[c] != s {
			t.mu.Unlock()
			return // unsubscribed meanwhile
		}
		if !progressed && after < t.last && after >= known {
			t.mu.Unlock()
			continue // the pump moved on during the read: read again
		}
		if after >= t.last || !progressed {
			if after < t.last {
				// The broker has nothing between after and what was
				// fanned out (a history that expired): say so.
				t.mu.Unlock()
				if core.SendPaced(c, ctx, []realtime.Message{gapEnvelope(t.name, after)}) != nil {
					return
				}
				gaps++
				t.mu.Lock()
				after = max(after, t.last)
			}
			if !stateSent {
				// Caught up: the presence state as of here, then read
				// again what the pump fanned out meanwhile.
				t.mu.Unlock()
				m, err := t.presenceState(ctx, after)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					failures++
					t.ts.logger.Warn("realtime: presence state waits for the broker", "topic", t.name, "err", err)
					if !sleepCtx(ctx, backoff(failures)) {
						return
					}
					continue
				}
				if core.SendPaced(c, ctx, []realtime.Message{m}) != nil {
					return
				}
				stateSent = true
				continue
			}
			s.after, s.ready = after, true
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// backoff is how long to wait after n failures in a row.
func backoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n, 7), 10*time.Second)
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// remove unsubscribes c and retires the topic when it was the last.
func (t *topic) remove(c *realtime.Conn) {
	t.mu.Lock()
	s := t.subs[c]
	if s == nil {
		t.mu.Unlock()
		return
	}
	delete(t.subs, c)
	if s.member != nil && t.members[s.member.ID] == s {
		delete(t.members, s.member.ID)
	}
	var sub Subscription
	retired := len(t.subs) == 0
	if retired {
		t.retired = true
		sub, t.sub = t.sub, nil
		t.queue = nil
		if t.wake != nil {
			close(t.wake)
			t.wake = nil
		}
	}
	t.mu.Unlock()
	if s.unhook != nil {
		s.unhook()
	}
	if s.member != nil {
		t.ts.leave(t.name, *s.member)
	}
	if sub != nil {
		sub.Close()
	}
	if retired {
		t.ts.drop(t)
	}
}
