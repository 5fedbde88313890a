package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime/topics"
)

// localMember is a member set through this broker, refreshed by it.
type localMember struct {
	info    json.RawMessage
	version uint64 // changes whenever the member is set again
}

// The presence scripts keep a topic's members hash and its alive sorted
// set (id → expiry in ms of the server's clock, +inf for never) together.
// KEYS: members, alive.
const scriptNow = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// setMembersScript records members. ARGV: ttl in ms (<= 0: never
// expires), the keys' TTL in ms (0: none), then id, info pairs.
var setMembersScript = redis.NewScript(scriptNow + `
local ttl = tonumber(ARGV[1])
local exp = '+inf'
if ttl > 0 then exp = string.format('%d', now + ttl) end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  redis.call('ZADD', KEYS[2], exp, ARGV[i])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return (#ARGV - 2) / 2
`)

// expireMembersScript removes the expired members and returns them as
// id, info pairs: of the nodes that run it at once, one gets each.
var expireMembersScript = redis.NewScript(scriptNow + `
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
local out = {}
for _, id in ipairs(dead) do
  local info = redis.call('HGET', KEYS[1], id)
  out[#out+1] = id
  out[#out+1] = info or ''
  redis.call('HDEL', KEYS[1], id)
end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
return out
`)

// deleteMemberScript removes a member. ARGV: id.
var deleteMemberScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// membersScript lists the members as id, info pairs, the expired ones
// included until ExpireMembers hands them out (and their leave goes out).
var membersScript = redis.NewScript(`return redis.call('HGETALL', KEYS[1])`)

func (b *Broker) memberKeys(topic string) []string {
	return []string{b.key(topic, "members"), b.key(topic, "alive")}
}

func (b *Broker) ttlMillis() int64 {
	if b.memberTTL <= 0 {
		return 0
	}
	return b.memberTTL.Milliseconds()
}

// keysTTLMillis is the TTL of a topic's presence keys: 3 MemberTTL, so
// that expired members stay for ExpireMembers a while, or Retention when
// members never expire.
func (b *Broker) keysTTLMillis() int64 {
	if b.memberTTL > 0 {
		return 3 * b.memberTTL.Milliseconds()
	}
	return b.retentionMillis()
}

// PresenceTTL is Options.MemberTTL (topics.PresenceExpirer).
func (b *Broker) PresenceTTL() time.Duration { return b.memberTTL }

// ExpireMembers removes topic's members whose node stopped refreshing them
// for MemberTTL and returns them (topics.PresenceExpirer); one script, so
// one caller gets each.
func (b *Broker) ExpireMembers(ctx context.Context, topic string) ([]topics.Member, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	if b.memberTTL <= 0 {
		return nil, nil
	}
	kv, err := expireMembersScript.Run(ctx, b.c, b.memberKeys(topic)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: expiring members of %q: %w", topic, err)
	}
	return membersOf(kv), nil
}

func membersOf(kv []string) []topics.Member {
	out := make([]topics.Member, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m := topics.Member{ID: kv[i]}
		if kv[i+1] != "" {
			m.Info = json.RawMessage(kv[i+1])
		}
		out = append(out, m)
	}
	return out
}

// SetMember records m as present in topic, on every node. With a
// MemberTTL the broker refreshes it until DeleteMember, so it expires
// only if this process stops doing so.
func (b *Broker) SetMember(ctx context.Context, topic string, m topics.Member) error {
	if b.isClosed() {
		return topics.ErrBrokerClosed
	}
	b.pwrite.RLock()
	defer b.pwrite.RUnlock()
	b.pmu.Lock()
	b.version++
	if b.members[topic] == nil {
		b.members[topic] = map[string]localMember{}
	}
	b.members[topic][m.ID] = localMember{info: m.Info, version: b.version}
	b.pmu.Unlock()
	err := setMembersScript.Run(ctx, b.c, b.memberKeys(topic), b.ttlMillis(), b.keysTTLMillis(), m.ID, []byte(m.Info)).Err()
	if err != nil {
		return fmt.Errorf("redisbroker: set member of %q: %w", topic, err)
	}
	return nil
}

// DeleteMember removes the member with the given id from topic.
func (b *Broker) DeleteMember(ctx context.Context, topic, id string) error {
	if b.isClosed() {
		return topics.ErrBrokerClosed
	}
	b.pwrite.RLock()
	defer b.pwrite.RUnlock()
	b.pmu.Lock()
	if ms := b.members[topic]; ms != nil {
		delete(ms, id)
		if len(ms) == 0 {
			delete(b.members, topic)
		}
	}
	b.pmu.Unlock()
	if err := deleteMemberScript.Run(ctx, b.c, b.memberKeys(topic), id).Err(); err != nil {
		return fmt.Errorf("redisbroker: delete member of %q: %w", topic, err)
	}
	return nil
}

// Members lists topic's members, set through any broker on the same
// Redis and prefix; expired ones stay listed until ExpireMembers removes
// them.
func (b *Broker) Members(ctx context.Context, topic string) ([]topics.Member, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	kv, err := membersScript.Run(ctx, b.c, b.memberKeys(topic)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: members of %q: %w", topic, err)
	}
	return membersOf(kv), nil
}

// refreshMembers pushes the expiry of this broker's members forward every
// MemberTTL/3 until Close. A refresh also restores members that expired
// while Redis was out of reach.
func (b *Broker) refreshMembers() {
	defer b.wg.Done()
	tick := time.NewTicker(b.memberTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.memberTTL/3)
		if err := b.refreshOnce(ctx); err != nil {
			b.logger.Warn("redisbroker: refreshing presence failed", "err", err)
		}
		cancel()
	}
}

type snapMember struct {
	topic, id string
	version   uint64
}

// refreshOnce sets every local member again, in one pipeline, then
// repairs what changed meanwhile: a member deleted or set again while the
// refresh ran might have been written back with old data.
func (b *Broker) refreshOnce(ctx context.Context) error {
	b.pmu.Lock()
	var snap []snapMember
	args := map[string][]any{}
	for topic, ms := range b.members {
		a := []any{b.ttlMillis(), b.keysTTLMillis()}
		for id, m := range ms {
			a = append(a, id, []byte(m.info))
			snap = append(snap, snapMember{topic, id, m.version})
		}
		args[topic] = a
	}
	b.pmu.Unlock()
	if len(snap) == 0 {
		return nil
	}
	pipe := b.c.Pipeline()
	for topic, a := range args {
		setMembersScript.Eval(ctx, pipe, b.memberKeys(topic), a...)
	}
	_, err := pipe.Exec(ctx)
	// Repair whatever changed since the snapshot, even after an error
	// (part of the pipeline may have run). SetMember and DeleteMember
	// write under pwrite's read lock, so none is half done while this
	// holds it, and none started after the repair can be undone by it.
	b.pwrite.Lock()
	defer b.pwrite.Unlock()
	for _, s := range snap {
		b.pmu.Lock()
		m, ok := b.members[s.topic][s.id]
		b.pmu.Unlock()
		switch {
		case !ok:
			if e := deleteMemberScript.Run(ctx, b.c, b.memberKeys(s.topic), s.id).Err(); e != nil && err == nil {
				err = e
			}
		case m.version != s.version:
			if e := setMembersScript.Run(ctx, b.c, b.memberKeys(s.topic), b.ttlMillis(), b.keysTTLMillis(), s.id, []byte(m.info)).Err(); e != nil && err == nil {
				err = e
			}
		}
	}
	return err
}
