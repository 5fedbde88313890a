package topics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Topics fans messages out to the connections subscribed to named topics,
// on one node or, through a shared Broker, on many. A connection is
// unsubscribed automatically when it closes.
//
// Connections receive topic messages wrapped in a JSON envelope, so that a
// client knows the topic and its position in it:
//
//	{"topic":"room","seq":12,"data":"hello"}           a text message
//	{"topic":"room","seq":13,"binary":"AAE="}          a binary message, base64
//	{"topic":"room","seq":14,"presence":"diff","joins":[{"id":"...","info":{...}}],"leaves":[...]}
//	{"topic":"room","presence":"state","members":[{"id":"...","info":{...}}]}
//	{"topic":"room","gap":{"after":3}}                 messages after 3 are lost
//
// A client that reconnects, on any transport, resumes by subscribing again
// with the last seq it saw: it receives what it missed, in order and
// exactly once, or a gap envelope first when the topic's history no longer
// reaches back. After a gap the next envelope's seq follows gap.after (a
// topic whose history aged out starts again at 1: the gap then says
// after 0). Each envelope is built once per message and shared (see
// Shared), so every transport encodes it once for all connections.
//
// # Presence
//
// Presence changes travel as diffs: the joins and leaves made on a node
// within PresenceInterval (50 ms) are published together as one topic
// message (split in a few when the batch is large), with a seq like any
// other, kept in the history and resumed like any other. joins and leaves
// are disjoint sets of members; applying a diff sets or deletes members
// by id, so applying one twice changes nothing. 10,000 members joining
// within an interval cost each subscriber one envelope (a few), not
// 10,000.
//
// A connection that Joins receives, once its catch-up has reached the
// live position, a state envelope (no seq) with the topic's members at
// that position; the diffs after it apply on top. Its catch-up leaves out
// the diffs before that position (their seqs are skipped, not gaps). A client rebuilds its
// member list from the state and the diffs that follow it, on every
// Join, and needs no history for it.
//
// A member leaves when its connection unsubscribes or closes. When its
// node dies instead, the broker's presence expiry removes it (see
// PresenceExpirer) and the surviving nodes publish its leave within two
// presence TTLs.
type Topics struct {
	b       Broker
	store   PresenceStore   // nil: presence is local
	expirer PresenceExpirer // nil: members do not expire
	logger  *slog.Logger

	mu        sync.Mutex
	topics    map[string]*topic
	local     map[string]map[string]Member // local presence when store is nil
	sweeping  bool                         // sweep runs; see startSweeperLocked
	sweepStop chan struct{}

	pmu     sync.Mutex
	batches map[string]*presenceBatch // presence changes not yet published
}

// New returns topics over broker b; nil means a new MemoryBroker with the
// defaults.
func New(b Broker) *Topics {
	if b == nil {
		b = NewMemoryBroker(nil)
	}
	t := &Topics{b: b, logger: slog.Default(), topics: map[string]*topic{}, local: map[string]map[string]Member{}, batches: map[string]*presenceBatch{}}
	if s, ok := b.(PresenceStore); ok {
		t.store = s
	}
	if e, ok := b.(PresenceExpirer); ok {
		t.expirer = e
	}
	return t
}

// Broker returns the broker the topics run on.
func (ts *Topics) Broker() Broker { return ts.b }

// Publish sends m to every subscriber of topic, on every node, and returns
// its sequence number.
func (ts *Topics) Publish(ctx context.Context, topic string, m realtime.Message) (uint64, error) {
	if m.Type != realtime.TextMessage && m.Type != realtime.BinaryMessage {
		return 0, errors.New("topics: invalid message type")
	}
	return ts.b.Publish(ctx, topic, m)
}

// Subscribe subscribes c to topic from now on.
func (ts *Topics) Subscribe(c *realtime.Conn, topic string) error {
	return ts.subscribe(c, topic, 0, false, false)
}

// Resume subscribes c to topic and first sends it the messages after seq
// after that it missed, in order and exactly once; a gap envelope comes
// first when some are no longer kept. Resume with after 0 replays the
// whole kept history. Resume returns once the subscription is in place:
// the history then streams from the broker as fast as the connection
// writes, however long it is, before the topic's live messages (messages
// the handler sends directly may come in between). The overflow policy
// does not apply to it.
func (ts *Topics) Resume(c *realtime.Conn, topic string, after uint64) error {
	return ts.subscribe(c, topic, after, true, false)
}

// Unsubscribe ends c's subscription to topic. Closing c does it too.
func (ts *Topics) Unsubscribe(c *realtime.Conn, topic string) {
	ts.mu.Lock()
	t := ts.topics[topic]
	ts.mu.Unlock()
	if t != nil {
		t.remove(c)
	}
}

// Join subscribes c to topic like Resume and makes it a member of the
// topic's presence with info (any JSON value, or nil). Once caught up, c
// receives the topic's presence state; every subscriber receives c's join
// in the next diff, and its leave when c unsubscribes or closes. Join
// returns once c is recorded as a member (in the broker's presence store
// when it has one); the diff follows within PresenceInterval.
func (ts *Topics) Join(c *realtime.Conn, topic string, after uint64, info any) error {
	raw, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if info == nil {
		raw = nil
	}
	m := Member{ID: c.ID(), Info: raw}
	if err := ts.subscribe(c, topic, after, true, true); err != nil {
		return err
	}
	ctx := c.Context()
	if err := ts.setMember(ctx, topic, m); err != nil {
		return err
	}
	ts.mu.Lock()
	t := ts.topics[topic]
	ts.mu.Unlock()
	member := false
	if t != nil {
		t.mu.Lock()
		if s := t.subs[c]; s != nil {
			s.member = &m
			t.members[m.ID] = s
			member = true
		}
		t.mu.Unlock()
	}
	if !member {
		// c closed (and left the topic) meanwhile: no leave will come.
		ts.leave(topic, m)
		return realtime.ErrClosed
	}
	ts.queuePresence(topic, m, true)
	return nil
}

// Members lists the members of topic's presence, on every node when the
// broker shares presence.
//
// With a broker whose presence expires (PresenceExpirer), Members first
// removes the expired members and queues their leaves, so that what it
// lists agrees with the diffs that follow.
func (ts *Topics) Members(ctx context.Context, topic string) ([]Member, error) {
	if ts.expirer != nil {
		gone, err := ts.expirer.ExpireMembers(ctx, topic)
		if err != nil {
			return nil, err
		}
		for _, m := range gone {
			ts.queuePresence(topic, m, false)
		}
	}
	if ts.store != nil {
		return ts.store.Members(ctx, topic)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]Member, 0, len(ts.local[topic]))
	for _, m := range ts.local[topic] {
		out = append(out, m)
	}
	return out, nil
}

func (ts *Topics) setMember(ctx context.Context, topic string, m Member) error {
	if ts.store != nil {
		return ts.store.SetMember(ctx, topic, m)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.local[topic] == nil {
		ts.local[topic] = map[string]Member{}
	}
	ts.local[topic][m.ID] = m
	return nil
}

// leave queues m's leave; the store forgets m when the diff that says so
// is published (see forgetLeft), so that a node dying in between leaves m
// to expire and be announced by another node rather than vanish
// unannounced.
func (ts *Topics) leave(topic string, m Member) {
	if ts.store == nil {
		ts.mu.Lock()
		delete(ts.local[topic], m.ID)
		if len(ts.local[topic]) == 0 {
			delete(ts.local, topic)
		}
		ts.mu.Unlock()
	}
	ts.queuePresence(topic, m, false)
}

// leaveTimeout bounds the broker call of a member's leave, which runs as
// its connection closes.
const leaveTimeout = 2 * time.Second

// get returns topic's state, creating it; created reports that the
// caller made it and must start it.
func (ts *Topics) get(name string) (t *topic, created bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t = ts.topics[name]
	if t == nil {
		t = &topic{ts: ts, name: name, subs: map[*realtime.Conn]*subscriber{}, members: map[string]*subscriber{}, started: make(chan struct{})}
		ts.topics[name] = t
		created = true
		ts.startSweeperLocked()
	}
	return t, created
}

// drop forgets t, unless a newer state took its name.
func (ts *Topics) drop(t *topic) {
	ts.mu.Lock()
	if ts.topics[t.name] == t {
		delete(ts.topics, t.name)
	}
	ts.stopSweeperLocked()
	ts.mu.Unlock()
}

// subscribe subscribes c to name; with resume from after, and with state
// followed by the presence state once caught up.
func (ts *Topics) subscribe(c *realtime.Conn, name string, after uint64, resume, state bool) error {
	for {
		if c.Context().Err() != nil {
			return realtime.ErrClosed // no state for a connection that has gone
		}
		t, created := ts.get(name)
		if created {
			t.start()
		} else {
			select {
			case <-t.started:
			case <-c.Context().Done():
				return realtime.ErrClosed
			}
		}
		if t.err != nil {
			return t.err // the next call tries afresh: start dropped t
		}
		if t.add(c, after, resume, state) {
			return nil
		}
		// t was retired as c arrived: start over with a fresh one.
	}
}

// Envelope is the JSON a connection receives for a topic message; see
// Topics.
type Envelope struct {
	Topic  string  `json:"topic"`
	Seq    uint64  `json:"seq,omitempty"`
	Data   *string `json:"data,omitempty"`
	Binary []byte  `json:"binary,omitempty"`
	// Presence is "diff" (Joins and Leaves) or "state" (Members).
	Presence string   `json:"presence,omitempty"`
	Joins    []Member `json:"joins,omitempty"`
	Leaves   []Member `json:"leaves,omitempty"`
	Members  []Member `json:"members,omitempty"`
	Gap      *GapInfo `json:"gap,omitempty"`
}

// GapInfo says that messages after After were lost.
type GapInfo struct {
	After uint64 `json:"after"`
}

// envelope wraps a topic entry for connections, shared for fan-out or
// for one connection (a catch-up).
func envelope(topic string, e Entry, shared bool) realtime.Message {
	env := Envelope{Topic: topic, Seq: e.Seq}
	switch e.Type {
	case realtime.BinaryMessage:
		env.Binary = e.Data
		if env.Binary == nil {
			env.Binary = []byte{}
		}
	case PresenceMessage:
		env.Presence = "diff"
		if b, ok := spliceDiff(env, e.Data); ok {
			return message(b, shared)
		}
		d := decodeDiff(e.Data)
		env.Joins, env.Leaves = d.Joins, d.Leaves
	default:
		s := string(e.Data)
		env.Data = &s
	}
	b, _ := json.Marshal(env)
	return message(b, shared)
}

// message makes an encoded envelope a text message, shared by all its
// subscribers or not.
func message(b []byte, shared bool) realtime.Message {
	m := realtime.Message{Type: realtime.TextMessage, Data: b}
	if shared {
		m = realtime.Shared(m)
	}
	return m
}

func gapEnvelope(topic string, after uint64) realtime.Message {
	b, _ := json.Marshal(Envelope{Topic: topic, Gap: &GapInfo{After: after}})
	return realtime.Message{Type: realtime.TextMessage, Data: b}
}
