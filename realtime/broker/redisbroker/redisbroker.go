// Package redisbroker is a topics.Broker on Redis: topics, their history
// and presence shared by every node connected to one Redis server (or
// cluster), and a realtime.Relay that forwards session requests between
// nodes.
//
// Each topic has four keys, sharing one cluster slot through the hash tag
// {topic}:
//
//	<prefix>:{topic}:seq      the topic's last sequence number (a counter)
//	<prefix>:{topic}:h        its history, a stream whose ids are 0-<seq>
//	<prefix>:{topic}:members  its presence: member id → info JSON (a hash)
//	<prefix>:{topic}:alive    when each member expires (a sorted set)
//
// and one pub/sub channel, <prefix>:{topic}:live, that carries each message
// to the subscribed nodes. Publish runs one Lua script that increments the
// counter, appends the message to the stream (trimmed exactly to
// Options.History entries) and publishes it, atomically, so sequence
// numbers are contiguous per topic and history and live delivery agree.
// (A topic that is empty or starts with '}' or '~' gets a '~' before it in
// the tag, so that the tag is never empty.)
//
// # Ageing
//
// Every key has a TTL, pushed forward whenever it is used, so the keys of
// idle topics leave Redis by themselves and the memory held stays bounded
// by the topics in use: seq and h expire Options.Retention (24 hours by
// default) after the topic's last Publish or Subscribe (the topic then
// starts again at 1, which topics.Topics tells its subscribers as a gap
// after 0); members and alive expire 3 MemberTTL after the last member
// change or refresh (Retention when members never expire).
//
// # Leaves of crashed nodes
//
// A node's broker refreshes its members every MemberTTL/3. ExpireMembers
// (topics.PresenceExpirer) removes the members whose expiry passed, by
// the server's clock, in one script, and returns them: one caller gets
// each. topics.Topics calls it for its topics every MemberTTL/2 and
// publishes their leaves, so the members of a node that died leave within
// 2 MemberTTL.
//
// # Outages
//
// Nothing is buffered in the process: while Redis cannot be reached,
// Publish returns an error (as soon as the client's retries give up, and at
// the latest when its context ends) and the message is not sent. A
// subscription reconnects by itself, then fetches from the history what was
// published while it was away and delivers it before the live messages, so
// it delivers every kept message exactly once, in order. topics.Topics
// also refills from the history whenever it sees sequence numbers jump.
//
// While Redis refuses connections, one probe per broker dials it every
// 10ms, and the broker's subscriptions reconnect as soon as it answers
// rather than when their backoff ends: other nodes publish again at once,
// and a subscription must read what they published before the history
// (Options.History messages) rolls over.
//
// A restarted Redis has what its persistence kept. With appendonly yes and
// appendfsync always, every message whose Publish returned nil survives a
// crash of Redis; with appendfsync everysec (Redis's default) Redis may
// have acknowledged writes that it had not yet written, up to two seconds
// of them on a busy disk, and after a crash the topic's numbering resumes
// from what was kept.
//
// A Publish whose reply was lost (a connection cut after Redis ran the
// script) may be retried by the client and so recorded twice, under two
// sequence numbers; give the client MaxRetries: -1 where a message must
// never be doubled.
//
// How soon a Publish fails during an outage depends on the client's
// MaxRetries and DialTimeout; its context bounds it in any case.
//
// # Limitations
//
// A relay request published just as its node stops serving is lost and
// waits for its context.
//
// # Cluster
//
// A topic's keys share a slot, so the scripts and transactions work on
// Redis Cluster; the scripts touch one topic's keys each, and pipelines
// over many topics are split by slot by the cluster client. Pub/sub uses
// PUBLISH, which a cluster forwards to every node. The tests run the
// broker on a three-master cluster of real redis-server processes
// (TestCluster). As a cluster's PUBLISH counts only the receivers on the node
// that took it, Relay.Request over a *redis.ClusterClient cannot tell that
// a node is unknown: it waits for its context instead of returning
// realtime.ErrUnknownNode.
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// Options configure a Broker. The zero value is usable.
type Options struct {
	// Prefix starts every key and channel name the broker uses. Brokers
	// with the same prefix on the same Redis form one cluster; different
	// prefixes keep applications apart on a shared Redis. Empty means
	// "rtkit".
	Prefix string
	// History is how many messages of each topic Redis keeps for resuming
	// subscribers and refilling holes (exactly that many: the stream is
	// trimmed exactly, see Publish). Zero or less means
	// topics.DefaultHistory.
	History int
	// Retention is how long a topic's counter and history stay in Redis
	// after its last Publish or Subscribe (their keys' TTL). Zero means 24
	// hours; negative keeps them until deleted.
	Retention time.Duration
	// MemberTTL is how long a presence member that this broker set stays
	// listed once the broker stops refreshing it, which happens when its
	// process dies or loses Redis: stale members of a crashed node vanish
	// after it. The broker refreshes its members every MemberTTL/3. Zero
	// means 30 seconds; a negative value keeps members until they are
	// deleted.
	MemberTTL time.Duration
	// PingInterval is how long a subscription's connection may stay silent
	// before the broker pings it; a ping unanswered within another
	// PingInterval reconnects it, so a dead connection that the network
	// did not report is noticed. Zero means 15 seconds.
	PingInterval time.Duration
	// Logger receives what goes wrong in the background (a failed
	// reconnect, a member refresh). Nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultPrefix       = "rtkit"
	DefaultRetention    = 24 * time.Hour
	DefaultMemberTTL    = 30 * time.Second
	DefaultPingInterval = 15 * time.Second
)

// Broker is a topics.Broker, topics.PresenceStore and realtime.Relay
// on Redis. It is safe for concurrent use.
type Broker struct {
	c         redis.UniversalClient
	prefix    string
	history   int
	retention time.Duration
	memberTTL time.Duration
	ping      time.Duration
	logger    *slog.Logger
	cluster   bool

	done   chan struct{}   // closed by Close
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	probes    map[string]chan struct{} // "network addr" → closed when it is reachable; see reachable

	pwrite  sync.RWMutex // see refreshOnce
	pmu     sync.Mutex
	members map[string]map[string]localMember // topic → id → member set here
	version uint64

	inboxMu sync.Mutex
	inbox   *inbox
}

var (
	_ topics.Broker          = (*Broker)(nil)
	_ topics.PresenceStore   = (*Broker)(nil)
	_ topics.PresenceExpirer = (*Broker)(nil)
	_ realtime.Relay         = (*Broker)(nil)
)

// New returns a broker on client, which it uses but does not own: close
// the client after the broker. o may be nil.
func New(client redis.UniversalClient, o *Options) (*Broker, error) {
	if client == nil {
		return nil, errors.New("redisbroker: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.History <= 0 {
		opts.History = topics.DefaultHistory
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MemberTTL == 0 {
		opts.MemberTTL = DefaultMemberTTL
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	_, cluster := client.(*redis.ClusterClient)
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		c:         client,
		prefix:    opts.Prefix,
		history:   opts.History,
		retention: opts.Retention,
		memberTTL: opts.MemberTTL,
		ping:      opts.PingInterval,
		logger:    opts.Logger,
		cluster:   cluster,
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[*listener]struct{}{},
		probes:    map[string]chan struct{}{},
		members:   map[string]map[string]localMember{},
	}
	if b.memberTTL > 0 {
		b.wg.Add(1)
		go b.refreshMembers()
	}
	return b, nil
}

func (b *Broker) key(topic, kind string) string {
	return b.prefix + ":{" + tag(topic) + "}:" + kind
}

// tag is topic as its keys' hash tag: never empty, and never cut short
// at its start. Topics starting with '~' get one more, so no two topics
// share a tag.
func tag(topic string) string {
	if topic == "" || topic[0] == '}' || topic[0] == '~' {
		return "~" + topic
	}
	return topic
}

// retentionMillis is the TTL of a topic's counter and history, 0 for none.
func (b *Broker) retentionMillis() int64 {
	if b.retention <= 0 {
		return 0
	}
	return b.retention.Milliseconds()
}

func (b *Broker) isClosed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// publishScript appends a message to a topic and publishes it.
// KEYS: seq, history, live channel. ARGV: history size, type, data, TTL
// in ms of seq and history (0: none).
//
// The stream is trimmed exactly (MAXLEN n, not ~ n): it then keeps the
// same messages as the memory broker, and History reports a gap exactly
// when the messages are gone rather than up to a stream node (100 entries)
// later. Trimming one entry per append costs little.
//
// If the counter was lost while the stream survived (an eviction, a DEL),
// the stream refuses the id; the script then continues the numbering after
// the stream's last entry.
var publishScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
local ok = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[1], string.format('0-%d', seq), 't', ARGV[2], 'd', ARGV[3])
if type(ok) == 'table' and ok.err then
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if #top == 0 then return redis.error_reply(ok.err) end
  local id = top[1][1]
  seq = tonumber(string.sub(id, string.find(id, '-', 1, true) + 1)) + 1
  redis.call('SET', KEYS[1], string.format('%d', seq))
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], string.format('0-%d', seq), 't', ARGV[2], 'd', ARGV[3])
end
redis.call('PUBLISH', KEYS[3], string.format('%d %s ', seq, ARGV[2]) .. ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return seq
`)

// Publish appends m to topic's history and publishes it to every node, in
// one atomic script, and returns its sequence number. Nothing is
// buffered: when Redis cannot be reached it returns an error, by the time
// ctx ends at the latest, and m is not published.
func (b *Broker) Publish(ctx context.Context, topic string, m realtime.Message) (uint64, error) {
	if b.isClosed() {
		return 0, topics.ErrBrokerClosed
	}
	keys := []string{b.key(topic, "seq"), b.key(topic, "h"), b.key(topic, "live")}
	seq, err := publishScript.Run(ctx, b.c, keys, b.history, int(m.Type), m.Data, b.retentionMillis()).Uint64()
	if err != nil {
		return 0, fmt.Errorf("redisbroker: publish to %q: %w", topic, err)
	}
	return seq, nil
}

// History returns topic's kept messages after the given position, read in
// one transaction with the topic's last sequence number.
func (b *Broker) History(ctx context.Context, topic string, after uint64, limit int) (topics.History, error) {
	if b.isClosed() {
		return topics.History{}, topics.ErrBrokerClosed
	}
	var (
		last *redis.StringCmd
		xr   *redis.XMessageSliceCmd
	)
	_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		last = p.Get(ctx, b.key(topic, "seq"))
		if after < math.MaxUint64 {
			start := "0-" + strconv.FormatUint(after+1, 10)
			if limit > 0 {
				xr = p.XRangeN(ctx, b.key(topic, "h"), start, "+", int64(limit))
			} else {
				xr = p.XRange(ctx, b.key(topic, "h"), start, "+")
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return topics.History{}, fmt.Errorf("redisbroker: history of %q: %w", topic, err)
	}
	var h topics.History
	if s, err := last.Result(); err == nil {
		h.Last, err = strconv.ParseUint(s, 10, 64)
		if err != nil {
			return topics.History{}, fmt.Errorf("redisbroker: history of %q: bad counter %q", topic, s)
		}
	} else if !errors.Is(err, redis.Nil) {
		return topics.History{}, fmt.Errorf("redisbroker: history of %q: %w", topic, err)
	}
	if after >= h.Last || xr == nil {
		return h, nil
	}
	msgs, err := xr.Result()
	if err != nil {
		return topics.History{}, fmt.Errorf("redisbroker: history of %q: %w", topic, err)
	}
	h.Entries = make([]topics.Entry, 0, len(msgs))
	for _, x := range msgs {
		e, err := entryOf(x)
		if err != nil {
			return topics.History{}, fmt.Errorf("redisbroker: history of %q: %w", topic, err)
		}
		h.Entries = append(h.Entries, e)
	}
	h.Gap = len(h.Entries) == 0 || h.Entries[0].Seq > after+1
	return h, nil
}

// entryOf decodes a history stream entry.
func entryOf(x redis.XMessage) (topics.Entry, error) {
	_, s, ok := strings.Cut(x.ID, "-")
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		return topics.Entry{}, fmt.Errorf("bad entry id %q", x.ID)
	}
	ts, _ := x.Values["t"].(string)
	t, err := strconv.Atoi(ts)
	if err != nil {
		return topics.Entry{}, fmt.Errorf("bad entry type %q", ts)
	}
	d, _ := x.Values["d"].(string)
	return topics.Entry{Seq: seq, Message: realtime.Message{Type: realtime.MessageType(t), Data: []byte(d)}}, nil
}

// decodeLive decodes a live message: "<seq> <type> <data>".
func decodeLive(payload string) (topics.Entry, error) {
	s, rest, ok1 := strings.Cut(payload, " ")
	ts, data, ok2 := strings.Cut(rest, " ")
	seq, err1 := strconv.ParseUint(s, 10, 64)
	t, err2 := strconv.Atoi(ts)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		n := min(len(payload), 32)
		return topics.Entry{}, fmt.Errorf("redisbroker: malformed live message %q", payload[:n])
	}
	return topics.Entry{Seq: seq, Message: realtime.Message{Type: realtime.MessageType(t), Data: []byte(data)}}, nil
}

// Close ends the broker's subscriptions, relay servers and member
// refreshes, waiting for their goroutines, and makes its methods return
// topics.ErrBrokerClosed. It does not close the client. Members set
// through the broker stay listed until deleted or, with a MemberTTL,
// until they expire.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.cancel()
	ls := make([]*listener, 0, len(b.listeners))
	for l := range b.listeners {
		ls = append(ls, l)
	}
	b.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
	b.wg.Wait()
	return nil
}
