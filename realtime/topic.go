package realtime

import (
	"context"
	"math"
	"sync"
	"time"
)

// maxTopicQueue bounds the entries a topic holds between its broker and
// its pump. Beyond it entries are dropped here and fetched back from the
// broker's history, as after an outage.
const maxTopicQueue = 8192

// brokerTimeout bounds the broker calls a topic makes on its own.
const brokerTimeout = 10 * time.Second

// topic is one topic's state on this node: its local subscribers and the
// pump, one goroutine per topic, that hands entries to them in order.
type topic struct {
	ts   *Topics
	name string

	mu      sync.Mutex
	subs    map[*Conn]*subscriber
	queue   []item
	wake    chan struct{} // closed when queue grows or the topic retires
	retired bool
	started bool
	sub     Subscription
}

// item is an entry from the broker, or a subscriber to catch up.
type item struct {
	entry Entry
	join  *subscriber
}

type subscriber struct {
	c        *Conn
	resume   bool
	after    uint64 // the last seq this connection was given
	ready    bool   // caught up: receives live entries
	member   *Member
	unhook   func()
	joinDone chan error
}

// add registers c and waits until its catch-up is queued behind the
// entries already there. It reports false if the topic retired first.
func (t *topic) add(c *Conn, after uint64, resume bool) (bool, error) {
	t.mu.Lock()
	if t.retired {
		t.mu.Unlock()
		return false, nil
	}
	if _, dup := t.subs[c]; dup {
		t.mu.Unlock()
		return true, nil
	}
	s := &subscriber{c: c, resume: resume, after: after, joinDone: make(chan error, 1)}
	t.subs[c] = s
	start := !t.started
	t.started = true
	t.mu.Unlock()

	s.unhook = c.onClose(func() { t.remove(c) })
	if start {
		if err := t.start(); err != nil {
			t.remove(c)
			return true, err
		}
	}
	t.push(item{join: s})
	select {
	case err := <-s.joinDone:
		return true, err
	case <-c.Done():
		return true, ErrClosed
	}
}

// start subscribes to the broker and runs the pump.
func (t *topic) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	sub, err := t.ts.b.Subscribe(ctx, t.name, func(e Entry) { t.push(item{entry: e}) })
	if err != nil {
		return err
	}
	h, err := t.ts.b.History(ctx, t.name, math.MaxUint64, 1)
	if err != nil {
		sub.Close()
		return err
	}
	t.mu.Lock()
	t.sub = sub
	t.mu.Unlock()
	go t.pump(h.Last)
	return nil
}

// push queues an item for the pump.
func (t *topic) push(it item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired || it.join == nil && len(t.queue) >= maxTopicQueue {
		return // dropped entries come back from the history
	}
	t.queue = append(t.queue, it)
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// pump hands entries to subscribers in order until the topic retires.
// last is the newest seq fanned out.
func (t *topic) pump(last uint64) {
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
		items := t.queue
		t.queue = nil
		t.mu.Unlock()
		var out []outgoing
		for _, it := range items {
			if it.join != nil {
				t.fanout(out) // everything before the join, first
				out = out[:0]
				it.join.joinDone <- t.catchUp(it.join, last)
				continue
			}
			out, last = t.deliver(out, it.entry, last)
		}
		t.fanout(out)
	}
}

// outgoing is an envelope ready for fan-out: a message of seq, or a gap.
type outgoing struct {
	m   Message
	seq uint64
	gap bool
}

// deliver appends e's envelope to out, after what the broker skipped (an
// outage, an overflow), fetched from the history, and returns the new last
// seq.
func (t *topic) deliver(out []outgoing, e Entry, last uint64) ([]outgoing, uint64) {
	if e.Seq <= last {
		return out, last // already handed out
	}
	if e.Seq > last+1 {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		h, err := t.ts.b.History(ctx, t.name, last, int(e.Seq-last-1))
		cancel()
		if err != nil || h.Gap {
			t.ts.logger.Warn("realtime: topic messages lost", "topic", t.name, "after", last, "err", err)
			out = append(out, outgoing{m: gapEnvelope(t.name, last), gap: true})
		}
		for _, he := range h.Entries {
			if he.Seq > last && he.Seq < e.Seq {
				out = append(out, outgoing{m: envelope(t.name, he), seq: he.Seq})
				last = he.Seq
			}
		}
	}
	return append(out, outgoing{m: envelope(t.name, e), seq: e.Seq}), e.Seq
}

// fanout sends a batch to every caught-up subscriber, each its part (what
// it has not seen), connection by connection: a connection's writer then
// finds the whole batch queued and writes it at once.
func (t *topic) fanout(out []outgoing) {
	if len(out) == 0 {
		return
	}
	t.mu.Lock()
	type send struct {
		s    *subscriber
		from int // index in out of the first envelope it gets
	}
	sends := make([]send, 0, len(t.subs))
	last := out[len(out)-1].seq
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
		if last > s.after {
			s.after = last
		}
	}
	t.mu.Unlock()
	for _, sd := range sends {
		p := fanoutPolicy(sd.s.c.opts.Overflow)
		for _, o := range out[sd.from:] {
			if sd.s.c.send(o.m, p) != nil {
				break
			}
		}
	}
}

// fanoutPolicy is the connection's overflow policy, except that a topic
// never waits for one slow connection: Block closes it instead.
func fanoutPolicy(p OverflowPolicy) OverflowPolicy {
	if p == OverflowBlock {
		return OverflowClose
	}
	return p
}

// catchUp sends a new subscriber what it missed and makes it live.
func (t *topic) catchUp(s *subscriber, last uint64) error {
	if !s.resume {
		t.mu.Lock()
		s.after, s.ready = last, true
		t.mu.Unlock()
		return nil
	}
	after := s.after
	if after < last {
		ctx, cancel := context.WithTimeout(s.c.Context(), brokerTimeout)
		h, err := t.ts.b.History(ctx, t.name, after, 0)
		cancel()
		if err != nil {
			return err
		}
		if h.Gap {
			s.c.send(gapEnvelope(t.name, after), fanoutPolicy(s.c.opts.Overflow))
		}
		for _, e := range h.Entries {
			if e.Seq > after && e.Seq <= last {
				s.c.send(envelope(t.name, e), fanoutPolicy(s.c.opts.Overflow))
				after = e.Seq
			}
		}
	}
	t.mu.Lock()
	// A position from the future (a topic that was reset) takes
	// everything live from here.
	s.after, s.ready = min(after, last), true
	t.mu.Unlock()
	return nil
}

// remove unsubscribes c and retires the topic when it was the last.
func (t *topic) remove(c *Conn) {
	t.mu.Lock()
	s := t.subs[c]
	if s == nil {
		t.mu.Unlock()
		return
	}
	delete(t.subs, c)
	var sub Subscription
	retired := len(t.subs) == 0
	if retired {
		t.retired = true
		sub = t.sub
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
		t.ts.mu.Lock()
		if t.ts.topics[t.name] == t {
			delete(t.ts.topics, t.name)
		}
		t.ts.mu.Unlock()
	}
}
