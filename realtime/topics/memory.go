package topics

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Defaults of MemoryBroker.
const (
	// DefaultHistory is how many messages per topic a MemoryBroker keeps.
	DefaultHistory = 1024
	// DefaultRetention is how long a MemoryBroker keeps an idle topic.
	DefaultRetention = time.Hour
)

// MemoryOptions configure a MemoryBroker. The zero value, and nil, mean
// the defaults.
type MemoryOptions struct {
	// History is how many messages per topic are kept for catch-up.
	// Zero means DefaultHistory.
	History int
	// Retention is how long a topic with no subscription and no member is
	// kept after its last use (a message, a subscription or a member
	// leaving); then, at the broker's next Publish, Subscribe or SetMember,
	// its history is forgotten and its sequence numbers start again at 1
	// (clients resuming from an older position get a gap). Zero means
	// DefaultRetention; negative keeps every topic forever.
	Retention time.Duration
	// Clock is the source of time for Retention. Nil means the real
	// clock.
	Clock realtime.Clock
}

// MemoryBroker is the Broker of a single process: topics, history and
// presence in memory, no service needed. It is the default of Topics.
// Idle topics are forgotten after MemoryOptions.Retention, so a topic per
// user or per conversation costs memory only while it is in use.
type MemoryBroker struct {
	size      int
	retention time.Duration
	clock     realtime.Clock

	mu     sync.Mutex
	topics map[string]*memTopic
	idle   list.List // of *memTopic, least recently touched first
	nodes  map[string]func(context.Context, []byte) []byte
	closed bool
}

var (
	_ Broker         = (*MemoryBroker)(nil)
	_ PresenceStore  = (*MemoryBroker)(nil)
	_ realtime.Relay = (*MemoryBroker)(nil)
)

type memTopic struct {
	name    string
	entries []Entry // ring of at most size, oldest first
	last    uint64
	subs    map[*memSub]struct{}
	members map[string]Member
	touched time.Time     // last publish, subscription or member change
	elem    *list.Element // in MemoryBroker.idle
}

type memSub struct {
	b       *MemoryBroker
	topic   string
	deliver func(Entry)
	mu      sync.Mutex // serialises deliveries with Close
	closed  bool
}

// NewMemoryBroker returns an in-memory broker with options o (nil means
// the defaults).
func NewMemoryBroker(o *MemoryOptions) *MemoryBroker {
	var oo MemoryOptions
	if o != nil {
		oo = *o
	}
	if oo.History <= 0 {
		oo.History = DefaultHistory
	}
	if oo.Retention == 0 {
		oo.Retention = DefaultRetention
	}
	return &MemoryBroker{
		size:      oo.History,
		retention: oo.Retention,
		clock:     oo.Clock,
		topics:    map[string]*memTopic{},
		nodes:     map[string]func(context.Context, []byte) []byte{},
	}
}

// topicLocked returns topic's state, creating it, and touches it. It also
// forgets the topics that have been idle (no subscription, no member) for
// Retention: the idle list is ordered by last touch, so this costs a look
// at its head, and one step per topic forgotten or found in use.
func (b *MemoryBroker) topicLocked(name string) *memTopic {
	now := b.now()
	for b.retention > 0 {
		e := b.idle.Front()
		if e == nil {
			break
		}
		t := e.Value.(*memTopic)
		if now.Sub(t.touched) < b.retention {
			break
		}
		if len(t.subs) > 0 || len(t.members) > 0 {
			b.touchLocked(t, now) // in use: its time starts when it is left
			continue
		}
		b.idle.Remove(e)
		delete(b.topics, t.name)
	}
	t := b.topics[name]
	if t == nil {
		t = &memTopic{name: name, subs: map[*memSub]struct{}{}, members: map[string]Member{}}
		t.elem = b.idle.PushBack(t)
		b.topics[name] = t
	}
	b.touchLocked(t, now)
	return t
}

// touchLocked marks t as used at now.
func (b *MemoryBroker) touchLocked(t *memTopic, now time.Time) {
	t.touched = now
	b.idle.MoveToBack(t.elem)
}

func (b *MemoryBroker) now() time.Time {
	if b.clock == nil {
		return time.Now()
	}
	return b.clock.Now()
}

// Len returns the number of topics the broker holds, idle ones not yet
// forgotten included.
func (b *MemoryBroker) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.topics)
}

// Publish appends m to topic's history and delivers it to every
// subscription, before it returns.
func (b *MemoryBroker) Publish(ctx context.Context, topic string, m realtime.Message) (uint64, error) {
	m.Data = append([]byte(nil), m.Data...)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, ErrBrokerClosed
	}
	t := b.topicLocked(topic)
	t.last++
	e := Entry{Seq: t.last, Message: m}
	if len(t.entries) == b.size {
		t.entries[0] = Entry{}
		t.entries = t.entries[1:]
	}
	t.entries = append(t.entries, e)
	subs := make([]*memSub, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	// Deliver in publish order: hold the broker's lock while handing out,
	// as deliver functions only queue.
	for _, s := range subs {
		s.mu.Lock()
		if !s.closed {
			s.deliver(e)
		}
		s.mu.Unlock()
	}
	b.mu.Unlock()
	return e.Seq, nil
}

// Subscribe delivers topic's messages published from now on.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic string, deliver func(Entry)) (Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBrokerClosed
	}
	s := &memSub{b: b, topic: topic, deliver: deliver}
	b.topicLocked(topic).subs[s] = struct{}{}
	return s, nil
}

// Close ends the subscription.
func (s *memSub) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.b.mu.Lock()
	if t := s.b.topics[s.topic]; t != nil {
		delete(t.subs, s)
		s.b.touchLocked(t, s.b.now())
	}
	s.b.mu.Unlock()
	return nil
}

// History returns topic's kept messages after the given position.
func (b *MemoryBroker) History(ctx context.Context, topic string, after uint64, limit int) (History, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return History{}, ErrBrokerClosed
	}
	t := b.topics[topic]
	if t == nil {
		return History{}, nil
	}
	h := History{Last: t.last}
	if after >= t.last {
		return h, nil
	}
	i := 0
	if len(t.entries) == 0 || t.entries[0].Seq > after+1 {
		h.Gap = true
	} else {
		i = int(after + 1 - t.entries[0].Seq)
	}
	end := len(t.entries)
	if limit > 0 && end-i > limit {
		end = i + limit
	}
	h.Entries = append([]Entry(nil), t.entries[i:end]...)
	return h, nil
}

// SetMember records m as present in topic.
func (b *MemoryBroker) SetMember(ctx context.Context, topic string, m Member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topicLocked(topic).members[m.ID] = m
	return nil
}

// DeleteMember removes a member from topic.
func (b *MemoryBroker) DeleteMember(ctx context.Context, topic, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[topic]; t != nil {
		delete(t.members, id)
		b.touchLocked(t, b.now())
	}
	return nil
}

// Members lists topic's members.
func (b *MemoryBroker) Members(ctx context.Context, topic string) ([]Member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		return nil, nil
	}
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, m)
	}
	return out, nil
}

// Close stops the broker: its methods return ErrBrokerClosed.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, t := range b.topics {
		for s := range t.subs {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
		}
	}
	return nil
}

// ServeNode answers requests to node with h until ctx ends: routes of one
// process that share the broker forward session requests to each other.
func (b *MemoryBroker) ServeNode(ctx context.Context, node string, h func(ctx context.Context, req []byte) []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	b.nodes[node] = h
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.nodes, node)
		b.mu.Unlock()
	})
	return nil
}

// Request calls node's handler with req.
func (b *MemoryBroker) Request(ctx context.Context, node string, req []byte) ([]byte, error) {
	b.mu.Lock()
	h := b.nodes[node]
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, ErrBrokerClosed
	}
	if h == nil {
		return nil, realtime.ErrUnknownNode
	}
	return h(ctx, req), nil
}
