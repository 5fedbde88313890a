package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtkit/rtkit/realtime/topics"
)

// bucket is the presence bucket's name.
func (b *Broker) bucket() string { return b.o.Prefix + "_presence" }

// ensureBucket creates the presence bucket, or updates its settings, and
// keeps a handle on it.
func (b *Broker) ensureBucket(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{
		Bucket:      b.bucket(),
		Description: "rtkit presence: <topic>.<member id> = member",
		Storage:     b.o.Storage,
		Replicas:    b.o.Replicas,
	}
	if b.o.PresenceTTL > 0 {
		cfg.TTL = 3 * b.o.PresenceTTL // a backstop; see the package doc
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return fmt.Errorf("natsbroker: presence bucket %s: %w", cfg.Bucket, err)
	}
	if b.kv == nil {
		b.kv = kv
	}
	return nil
}

// memberEntry is a member this broker set, refreshed until deleted.
type memberEntry struct {
	mu   sync.Mutex // orders the key's writes, held across them
	val  []byte
	rev  uint64 // the revision this broker last wrote
	live bool
}

func (b *Broker) memberKey(topic, id string) string { return token(topic) + "." + token(id) }

// entry returns key's entry, locked, creating it.
func (b *Broker) entry(key string) *memberEntry {
	for {
		b.mu.Lock()
		e := b.members[key]
		if e == nil {
			e = &memberEntry{}
			b.members[key] = e
		}
		b.mu.Unlock()
		e.mu.Lock()
		b.mu.Lock()
		current := b.members[key] == e
		b.mu.Unlock()
		if current {
			return e
		}
		e.mu.Unlock() // deleted while we waited
	}
}

// drop forgets key's entry, which the caller has locked.
func (b *Broker) drop(key string, e *memberEntry) {
	e.live = false
	b.mu.Lock()
	if b.members[key] == e {
		delete(b.members, key)
	}
	b.mu.Unlock()
}

// SetMember records m as present in topic, and keeps it there (see
// Options.PresenceTTL) until DeleteMember or Close.
func (b *Broker) SetMember(ctx context.Context, topic string, m topics.Member) error {
	if b.isClosed() {
		return topics.ErrBrokerClosed
	}
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	key := b.memberKey(topic, m.ID)
	e := b.entry(key)
	defer e.mu.Unlock()
	rev, err := b.put(ctx, key, val)
	if err != nil {
		b.drop(key, e)
		return fmt.Errorf("natsbroker: presence in %q: %w", topic, err)
	}
	e.val, e.rev, e.live = val, rev, true
	return nil
}

// put writes a presence value, recreating the bucket if the server lost
// it (memory storage across a restart).
func (b *Broker) put(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := b.kv.Put(ctx, key, val)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		if err = b.ensureBucket(ctx); err == nil {
			rev, err = b.kv.Put(ctx, key, val)
		}
	}
	return rev, err
}

// refreshEntry rewrites e's value unless someone else changed it since
// this broker wrote it: a member deleted by another node stays deleted.
// One that expired (its refreshes failed for a while, as in an outage) is
// written again.
func (b *Broker) refreshEntry(ctx context.Context, key string, e *memberEntry) {
	rev, err := b.kv.Update(ctx, key, e.val, e.rev)
	if err == nil {
		e.rev = rev
		return
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return // tried again next round
	}
	switch cur, err := b.kv.Get(ctx, key); {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if expired, err := b.expired(ctx, key); err == nil && expired {
			if rev, err := b.put(ctx, key, e.val); err == nil {
				e.rev = rev
			}
		} else if err == nil {
			b.drop(key, e) // deleted
		}
	case err != nil:
	case string(cur.Value()) == string(e.val):
		e.rev = cur.Revision() // our own write whose answer was lost
	default:
		b.drop(key, e) // set anew by another node: it refreshes it
	}
}

// expired reports whether key has no value nor delete marker left in the
// bucket: it expired rather than being deleted.
func (b *Broker) expired(ctx context.Context, key string) (bool, error) {
	subj := jetstream.DefaultAPIPrefix + "DIRECT.GET.KV_" + b.bucket() + ".$KV." + b.bucket() + "." + key
	msg, err := b.nc.RequestWithContext(ctx, subj, nil)
	if err != nil {
		return false, err
	}
	return msg.Header.Get("Status") == "404", nil
}

// DeleteMember removes the member with the given id from topic, whichever
// node set it.
func (b *Broker) DeleteMember(ctx context.Context, topic, id string) error {
	if b.isClosed() {
		return topics.ErrBrokerClosed
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	key := b.memberKey(topic, id)
	e := b.entry(key)
	defer e.mu.Unlock()
	b.drop(key, e)
	if err := b.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsbroker: presence in %q: %w", topic, err)
	}
	return nil
}

// stale reports whether a presence value was written more than
// PresenceTTL ago, by the server's timestamp.
func (b *Broker) stale(h nats.Header) bool {
	if b.o.PresenceTTL <= 0 {
		return false
	}
	ts, err := time.Parse(time.RFC3339Nano, h.Get(jetstream.TimeStampHeaer))
	return err == nil && time.Since(ts) > b.o.PresenceTTL
}

// PresenceTTL is Options.PresenceTTL (topics.PresenceExpirer).
func (b *Broker) PresenceTTL() time.Duration { return b.o.PresenceTTL }

// ExpireMembers deletes topic's members that were not refreshed for
// PresenceTTL and returns them (topics.PresenceExpirer). Each delete is a
// compare-and-set on the revision read, so of the nodes that expire a
// member at once, one returns it; a member refreshed meanwhile stays.
func (b *Broker) ExpireMembers(ctx context.Context, topic string) ([]topics.Member, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	if b.o.PresenceTTL <= 0 {
		return nil, nil
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	prefix := "$KV." + b.bucket() + "."
	r := directGet{Seq: 1, NextFor: prefix + token(topic) + ".*", Batch: maxBatch}
	var out []topics.Member
	for {
		bt, err := b.directBatch(ctx, "KV_"+b.bucket(), r)
		if err != nil {
			return out, fmt.Errorf("natsbroker: expiring members of %q: %w", topic, err)
		}
		for i, e := range bt.entries {
			h := bt.headers[i]
			if h.Get("KV-Operation") != "" || !b.stale(h) {
				continue
			}
			var m topics.Member
			if json.Unmarshal(e.Data, &m) != nil {
				continue
			}
			key := strings.TrimPrefix(h.Get(jetstream.SubjectHeader), prefix)
			if err := b.kv.Delete(ctx, key, jetstream.LastRevision(e.Seq)); err == nil {
				out = append(out, m)
			}
		}
		if len(bt.entries) == 0 || bt.last <= bt.entries[len(bt.entries)-1].Seq {
			return out, nil
		}
		r.Seq = bt.entries[len(bt.entries)-1].Seq + 1
	}
}

// Members lists topic's members, on every node, expired ones included
// until ExpireMembers removes them (so that their leave is published
// before they vanish). It reads the topic's
// keys from the bucket's stream with batched direct gets (the bucket keeps
// one revision per key, so each key's message is its value or its delete
// marker) rather than a KV watch: a watch waits for a key that expires
// while it starts.
func (b *Broker) Members(ctx context.Context, topic string) ([]topics.Member, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	r := directGet{Seq: 1, NextFor: "$KV." + b.bucket() + "." + token(topic) + ".*", Batch: maxBatch}
	var out []topics.Member
	for {
		bt, err := b.directBatch(ctx, "KV_"+b.bucket(), r)
		if err != nil {
			return nil, fmt.Errorf("natsbroker: members of %q: %w", topic, err)
		}
		for i, e := range bt.entries {
			if bt.headers[i].Get("KV-Operation") != "" {
				continue // deleted
			}
			var m topics.Member
			if err := json.Unmarshal(e.Data, &m); err == nil {
				out = append(out, m)
			}
		}
		if len(bt.entries) == 0 || bt.last <= bt.entries[len(bt.entries)-1].Seq {
			return out, nil
		}
		r.Seq = bt.entries[len(bt.entries)-1].Seq + 1
	}
}

// refresh rewrites this broker's members every PresenceTTL/3 so that the
// bucket does not expire them, until Close.
func (b *Broker) refresh() {
	defer b.wg.Done()
	t := time.NewTicker(b.o.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		keys := make([]string, 0, len(b.members))
		for k := range b.members {
			keys = append(keys, k)
		}
		b.mu.Unlock()
		for _, k := range keys {
			if b.ctx.Err() != nil {
				return
			}
			b.mu.Lock()
			e := b.members[k]
			b.mu.Unlock()
			if e == nil {
				continue
			}
			e.mu.Lock()
			if e.live {
				ctx, cancel := context.WithTimeout(b.ctx, b.o.Timeout)
				b.refreshEntry(ctx, k, e)
				cancel()
			}
			e.mu.Unlock()
		}
	}
}
