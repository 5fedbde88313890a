package topics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// PresenceInterval is how long a node gathers a topic's presence changes
// before it publishes them as one diff: the joins and leaves made on the
// node within one interval reach every subscriber as one envelope (or a
// few, see maxDiffBytes), whatever their number.
const PresenceInterval = 50 * time.Millisecond

// maxDiffBytes bounds the members' JSON in one diff message; a larger
// batch is split into several diffs, so that each fits a broker's message
// limit (NATS's max_payload is 1 MiB by default).
const maxDiffBytes = 256 << 10

// presenceDiff is the data of a PresenceMessage: members that joined and
// members that left, disjoint by id.
type presenceDiff struct {
	Joins  []Member `json:"joins,omitempty"`
	Leaves []Member `json:"leaves,omitempty"`
}

// legacyEvent is the data of the presence messages of earlier versions,
// one member each; history written by them still decodes.
type legacyEvent struct {
	Presence string  `json:"presence"`
	Member   *Member `json:"member"`
}

// isDiff reports whether data is a presenceDiff as publishDiffs encodes
// it (not a legacyEvent): a JSON object whose first field is "joins" or
// "leaves".
func isDiff(data []byte) bool {
	return bytes.HasPrefix(data, []byte(`{"joins":[`)) || bytes.HasPrefix(data, []byte(`{"leaves":[`))
}

// spliceDiff encodes env, a presence envelope without members, with the
// joins and leaves of a PresenceMessage's data spliced in as they are, the
// same bytes json.Marshal would write for them, without decoding them: a
// catch-up re-encodes every diff of the history for every joiner, and
// diffs of a join storm are long. It reports false for data it cannot
// splice (not a valid diff as publishDiffs writes it).
func spliceDiff(env Envelope, data []byte) ([]byte, bool) {
	if !isDiff(data) || !json.Valid(data) {
		return nil, false
	}
	head, err := json.Marshal(env)
	if err != nil {
		return nil, false
	}
	b := make([]byte, 0, len(head)+len(data))
	b = append(b, head[:len(head)-1]...) // without its '}'
	b = append(b, ',')
	return append(b, data[1:]...), true
}

// decodeDiff reads a PresenceMessage's data.
func decodeDiff(data []byte) presenceDiff {
	var d presenceDiff
	if isDiff(data) {
		json.Unmarshal(data, &d)
		return d
	}
	var old legacyEvent
	if json.Unmarshal(data, &old) == nil && old.Member != nil {
		switch old.Presence {
		case "join":
			d.Joins = []Member{*old.Member}
		case "leave":
			d.Leaves = []Member{*old.Member}
		}
		return d
	}
	json.Unmarshal(data, &d)
	return d
}

// presenceBatch is a topic's presence changes on this node that are not
// published yet: the latest change per member id.
//
// Invariants: at most one flush of a topic runs at a time (flushing); a
// batch with changes has a timer pending or a flush running, which
// schedules the next one when it ends.
type presenceBatch struct {
	changes  map[string]change
	timer    *time.Timer
	flushing bool
	failures int
}

type change struct {
	m    Member
	join bool
}

// queuePresence records a join or leave of m in topic, published with the
// other changes of the interval.
func (ts *Topics) queuePresence(topic string, m Member, join bool) {
	ts.pmu.Lock()
	defer ts.pmu.Unlock()
	b := ts.batches[topic]
	if b == nil {
		b = &presenceBatch{changes: map[string]change{}}
		ts.batches[topic] = b
	}
	b.changes[m.ID] = change{m: m, join: join}
	if !b.flushing && b.timer == nil {
		b.timer = time.AfterFunc(PresenceInterval, func() { ts.flushPresence(topic) })
	}
}

// flushPresence publishes topic's pending changes as diffs. On a broker
// error the changes are kept (newer ones for the same member win) and
// tried again after a backoff.
func (ts *Topics) flushPresence(topic string) {
	ts.pmu.Lock()
	b := ts.batches[topic]
	if b == nil {
		ts.pmu.Unlock()
		return
	}
	b.timer = nil
	if len(b.changes) == 0 {
		delete(ts.batches, topic)
		ts.pmu.Unlock()
		return
	}
	taken := b.changes
	b.changes = map[string]change{}
	b.flushing = true
	ts.pmu.Unlock()

	if ts.store != nil {
		ts.forgetLeft(topic, taken)
	}
	err := ts.publishDiffs(topic, taken)

	ts.pmu.Lock()
	defer ts.pmu.Unlock()
	b.flushing = false
	wait := PresenceInterval
	if err != nil && !errors.Is(err, ErrBrokerClosed) {
		ts.logger.Warn("realtime: presence diff not published; retrying", "topic", topic, "err", err)
		for id, c := range taken {
			if _, newer := b.changes[id]; !newer {
				b.changes[id] = c
			}
		}
		b.failures++
		wait = backoff(b.failures)
	} else {
		b.failures = 0
	}
	if len(b.changes) == 0 {
		delete(ts.batches, topic)
		return
	}
	b.timer = time.AfterFunc(wait, func() { ts.flushPresence(topic) })
}

// forgetLeft deletes from the store the members whose leave is about to
// be published, unless they joined again meanwhile. Deleting at the flush
// rather than when the connection closes keeps the window in which a
// dying node leaves a member deleted but unannounced to one broker round
// trip; deleting before publishing keeps Members, on every node, in step
// with the diffs its subscribers have received.
func (ts *Topics) forgetLeft(topic string, changes map[string]change) {
	for id, c := range changes {
		if c.join {
			continue
		}
		ts.pmu.Lock()
		again := false
		if b := ts.batches[topic]; b != nil {
			again = b.changes[id].join
		}
		ts.pmu.Unlock()
		if again {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		if err := ts.store.DeleteMember(ctx, topic, id); err != nil {
			ts.logger.Warn("realtime: presence leave failed", "topic", topic, "member", id, "err", err)
		}
		cancel()
	}
}

// publishDiffs publishes changes as diffs of at most maxDiffBytes each,
// ordered by member id.
func (ts *Topics) publishDiffs(topic string, changes map[string]change) error {
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var d presenceDiff
	size := 0
	flush := func() error {
		if len(d.Joins)+len(d.Leaves) == 0 {
			return nil
		}
		data, _ := json.Marshal(d)
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		defer cancel()
		_, err := ts.b.Publish(ctx, topic, realtime.Message{Type: PresenceMessage, Data: data})
		d, size = presenceDiff{}, 0
		return err
	}
	for i, id := range ids {
		c := changes[id]
		if c.join {
			d.Joins = append(d.Joins, c.m)
		} else {
			d.Leaves = append(d.Leaves, c.m)
		}
		size += len(id) + len(c.m.Info) + 16
		if size >= maxDiffBytes || i == len(ids)-1 {
			if err := flush(); err != nil {
				// What was published stays published; the caller retries
				// all of it, which repeats some changes (applying a diff
				// twice changes nothing).
				return err
			}
		}
	}
	return nil
}

// stateEnvelope is how a presence state is encoded: members always
// present, [] when there are none.
type stateEnvelope struct {
	Topic    string   `json:"topic"`
	Presence string   `json:"presence"`
	Members  []Member `json:"members"`
}

// presenceState returns the state envelope of t's members for a
// subscriber whose catch-up reached seq pos. It comes from a read of the
// members that started after the subscriber asked, hence after every diff
// up to pos was published, so that applying the diffs after pos to it is
// exact (or from an earlier read that started at pos or later). Joiners
// share reads: one runs at a time, and those who ask meanwhile share the
// next one, so a join storm costs a read per read time, not per joiner.
func (t *topic) presenceState(ctx context.Context, pos uint64) (realtime.Message, error) {
	t.stateMu.Lock()
	if t.stateOK && t.stateAt >= pos {
		m := t.stateMsg
		t.stateMu.Unlock()
		return m, nil
	}
	r := t.stateRead
	if r == nil || r.at < pos {
		if r = t.stateNext; r == nil {
			r = &stateRead{done: make(chan struct{})}
			t.stateNext = r
			if t.stateRead == nil {
				t.startStateLocked()
			}
		}
	}
	t.stateMu.Unlock()
	select {
	case <-r.done:
		return r.msg, r.err
	case <-ctx.Done():
		return realtime.Message{}, ctx.Err()
	}
}

// stateRead is a read of the members, shared by the joiners waiting for
// it.
type stateRead struct {
	at   uint64 // t.last when the read started
	done chan struct{}
	msg  realtime.Message
	err  error
}

// startStateLocked starts the next read, on a goroutine of the topic's
// that ends with the read (within brokerTimeout).
func (t *topic) startStateLocked() {
	r := t.stateNext
	t.stateNext, t.stateRead = nil, r
	t.mu.Lock()
	r.at = t.last
	t.mu.Unlock()
	go t.readState(r)
}

func (t *topic) readState(r *stateRead) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	members, err := t.ts.Members(ctx, t.name)
	cancel()
	if err == nil {
		slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
		if members == nil {
			members = []Member{}
		}
		data, _ := json.Marshal(stateEnvelope{Topic: t.name, Presence: "state", Members: members})
		r.msg = realtime.Shared(realtime.Message{Type: realtime.TextMessage, Data: data})
	}
	r.err = err
	t.stateMu.Lock()
	if err == nil && (!t.stateOK || r.at >= t.stateAt) {
		t.stateMsg, t.stateAt, t.stateOK = r.msg, r.at, true
	}
	t.stateRead = nil
	if t.stateNext != nil {
		t.startStateLocked()
	}
	t.stateMu.Unlock()
	close(r.done)
}

// startSweeperLocked runs the sweep of expired members while this node has
// topics, when the broker's presence expires (PresenceExpirer).
func (ts *Topics) startSweeperLocked() {
	if ts.expirer == nil || ts.sweeping || ts.expirer.PresenceTTL() <= 0 {
		return
	}
	ts.sweeping = true
	ts.sweepStop = make(chan struct{})
	go ts.sweep(ts.sweepStop)
}

// stopSweeperLocked stops the sweep once the node has no topics.
func (ts *Topics) stopSweeperLocked() {
	if ts.sweeping && len(ts.topics) == 0 {
		ts.sweeping = false
		close(ts.sweepStop)
	}
}

// sweep asks the broker, every PresenceTTL/2, for the members of this
// node's topics that expired (their node died or lost the broker for
// longer than PresenceTTL) and publishes their leaves. Each expired member
// is handed to one node only. It stops when stop closes, once the node
// has no topics left.
func (ts *Topics) sweep(stop chan struct{}) {
	tick := time.NewTicker(ts.expirer.PresenceTTL() / 2)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-stop:
			return
		}
		ts.mu.Lock()
		names := make([]string, 0, len(ts.topics))
		for name := range ts.topics {
			names = append(names, name)
		}
		ts.mu.Unlock()
		for _, name := range names {
			ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
			gone, err := ts.expirer.ExpireMembers(ctx, name)
			cancel()
			if err != nil {
				ts.logger.Warn("realtime: expiring presence failed", "topic", name, "err", err)
				continue
			}
			for _, m := range gone {
				ts.queuePresence(name, m, false)
			}
		}
	}
}
