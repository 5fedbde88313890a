// Package natsbroker is a topics.Broker on NATS JetStream: topics,
// history, presence and request relaying shared by every node connected to
// the same NATS system.
//
// # Layout
//
// Everything the broker creates is named after Options.Prefix (P, "rtkit"
// by default) and a token made from the topic name: the topic escaped to
// letters, digits and '-' (every other byte, upper-case letters included,
// becomes '_' and two hex digits), "_" for the empty topic, or "_h" and
// the SHA-256 of the topic in hex when the escaped name would be longer
// than 128 bytes.
//
//	P_topics             one JetStream stream for every topic
//	P.m.<token>          a topic's subject in it: Publish sends here
//	P.r.<token>          the stream's RePublish destination: Subscribe listens here
//	P_presence           the KV bucket of presence, keys <token>.<escaped member id>
//	P.node.<node>        the subject a node's relay answers on
//
// The number of streams is two (P_topics and the presence bucket) however
// many topics there are. The stream keeps the last Options.History
// messages of each subject (MaxMsgsPerSubject, oldest discarded first)
// and discards any message older than Options.Retention (MaxAge), so an
// idle topic's state ages out of the server: it then starts again at
// sequence 1, which topics.Topics tells its subscribers as a gap after 0.
// New creates the stream, or updates its limits to the Options.
//
// Earlier versions kept one stream per topic (P_<token>, subject
// P.t.<token>); they are not read any more and can be deleted.
//
// # Sequence numbers
//
// A topic's messages are interleaved with every other topic's in the
// stream, so the stream sequence is not the topic's. Each message carries
// its topic sequence in the Rtkit-Seq header, assigned by the publisher
// with optimistic concurrency: Publish reads the subject's last message
// (a direct get by subject, or the broker's cache of what it last
// published or received live), sends seq+1 with
// Nats-Expected-Last-Subject-Sequence set to that message's stream
// sequence, and on "wrong last sequence" (another node published first)
// reads again and retries. The stream stores one message per expected
// sequence, so topic sequences are 1, 2, 3 … without holes or doubles,
// whichever nodes publish. The message type travels in the Rtkit-Type
// header (absent for text).
//
// Publish is a JetStream request: it returns the sequence from the
// message's header once the stream acknowledged it, or an error.
// Publishers get errors during an outage and nothing is buffered by the
// broker: Publish fails at once when the connection is not connected, and
// otherwise when ctx ends (or after Options.Timeout if ctx has no
// deadline). Connect with nats.ReconnectBufSize(-1) so that the NATS
// client does not buffer either: with its default 8 MiB reconnect buffer,
// a message sent just as the connection drops may still reach the stream
// after Publish has reported an error.
//
// # Subscribe
//
// The stream republishes what it stores, headers included, to P.r.<token>;
// Subscribe is a plain core NATS subscription on that subject. This was
// chosen over a JetStream ordered consumer per subscription because it
// needs no server state, adds no consumer round trips to the
// publish-to-delivery path, and the server republishes in stream order
// from the stream leader. What it does not do is fill holes: messages
// republished while the connection is down, or dropped by the client as
// a slow consumer, are skipped. That is the Broker contract; topics.Topics
// notices the jump in sequence numbers and fetches the missing messages
// from History. The NATS client resubscribes by itself after a reconnect.
//
// # History
//
// History reads the subject's last message for Last, then the kept
// messages after the asked position with batched direct gets filtered by
// subject (the stream allows direct access). A catch-up reads History a
// chunk at a time: the broker remembers, per topic, where the last read
// ended in the stream, so the next chunk starts there rather than at the
// subject's first message. Direct gets may be answered by any replica:
// with Replicas > 1 a follower can trail the leader by a moment, so a
// History call right after a Publish may miss its newest messages.
//
// # Measured
//
// One embedded server on loopback, 10 or 100,000 topics (go test -run '^$'
// -bench Topics -benchtime 1x ./realtime/broker/natsbroker/; a catch-up is
// a History of a topic's last two messages):
//
//	storage  topics   streams  server memory added  publish p50/p99  catch-up p50/p99
//	file     10       2        0.4 MiB              150 µs / 0.6 ms  1.6 ms / 4.7 ms
//	file     100,000  2        48 MiB               177 µs / 5.4 ms  370 µs / 9.8 ms
//	memory   10       2        0 MiB                142 µs / 0.7 ms  1.6 ms / 5.5 ms
//	memory   100,000  2        72 MiB               304 µs / 1.2 ms  9.9 ms / 25 ms
//
// A History reads the topic's kept messages from its oldest (the stream
// has no "the n-th last of a subject"), so its cost grows with what the
// topic keeps, up to Options.History: the 10 topics above hold about 200
// messages each, the 100,000 two. Memory storage finds a subject's next
// message by scanning the messages between, which a stream interleaving
// 100,000 topics makes slow; file storage skips blocks without the
// subject. Keep the default, FileStorage, for many topics.
//
// # Presence
//
// Members are values of the KV bucket P_presence (one key per topic and
// member; Members reads a topic's keys with batched direct gets on the
// bucket's stream, filtered by subject). Every broker refreshes the
// members it set itself each Options.PresenceTTL/3. A value that was not
// written for PresenceTTL (by the server's timestamp, read against this
// node's clock: nodes and servers must keep their clocks within a
// fraction of PresenceTTL) is expired: ExpireMembers deletes it with a compare-and-set on its revision, so
// exactly one node claims it, and returns it; topics.Topics then
// publishes its leave. The members of a node that crashed thus leave
// within 2 PresenceTTL. The bucket itself drops values after 3
// PresenceTTL (its MaxAge), so presence of topics nobody follows ages out
// too. A refresh is a compare-and-set on the revision the broker wrote,
// so a member deleted (or expired by another node) or set anew by another
// node is not brought back; one that vanished from the bucket because
// refreshes failed for longer than 3 PresenceTTL (an outage) is written
// again.
//
// # Relay
//
// ServeNode subscribes (without a queue group, so a node name must be
// served by one node) to P.node.<node> and answers each request with
// msg.Respond from a goroutine of its own; Request is a NATS request to
// that subject, realtime.ErrUnknownNode when nobody subscribes to it. The
// requester's remaining time travels in the Rtkit-Timeout header and bounds
// the handler's context. Requests and answers must fit the server's
// max_payload (1 MiB by default).
//
// # Outages
//
// The broker uses the nats.Conn it is given and never closes it: the
// connection's reconnect settings decide how an outage is ridden out.
// During one Publish, History, presence and Request calls fail, and
// subscriptions are silent; afterwards everything resumes on the same
// objects. With Storage memory, a server restart loses history (topics
// start again at sequence 1, which Topics handles as a topic reset) and
// presence; the broker creates the stream and bucket again on the first
// call that finds them gone.
package natsbroker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// Options configure a Broker. The zero value is usable.
type Options struct {
	// Prefix starts every subject, stream and bucket name the broker uses
	// (see the package documentation). Letters, digits, '-' and '_' only;
	// "rtkit" if empty. Brokers that share topics must use the same prefix.
	Prefix string
	// History is how many messages each topic keeps (the stream's
	// MaxMsgsPerSubject, oldest discarded first); topics.DefaultHistory if
	// <= 0. New sets it on the stream: brokers sharing a prefix must agree.
	History int
	// Retention is how long a message is kept (the stream's MaxAge): a
	// topic with no message for that long is forgotten by the server and
	// starts again at 1. 24 hours if 0; negative keeps messages until
	// History pushes them out.
	Retention time.Duration
	// Replicas is the number of copies JetStream keeps of each topic
	// stream and of the presence bucket, 1 if <= 0 (a clustered
	// deployment wants 3).
	Replicas int
	// Storage is where JetStream keeps streams: jetstream.FileStorage (the
	// zero value; history survives a server restart) or
	// jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// PresenceTTL is how long a member stays present without its node
	// refreshing it; the broker refreshes its own members every
	// PresenceTTL/3. 0 means one minute; negative disables expiry and
	// refreshing (the members of a crashed node then stay until deleted).
	// The bucket's MaxAge is 3 PresenceTTL: brokers sharing a prefix must
	// agree on it.
	PresenceTTL time.Duration
	// Timeout bounds the calls the broker makes without a caller's
	// deadline: New's set-up, presence refreshes, and any call whose
	// context has no deadline. 5 seconds if <= 0.
	Timeout time.Duration
}

// DefaultPrefix is the Prefix used when Options.Prefix is empty.
const DefaultPrefix = "rtkit"

const (
	defaultRetention   = 24 * time.Hour
	defaultPresenceTTL = time.Minute
	defaultTimeout     = 5 * time.Second
	// maxEscaped is the longest escaped topic used as is in names.
	maxEscaped = 128
	// maxBatch is the most messages one direct get asks for.
	maxBatch = 4096
	// TypeHeader carries a message's realtime.MessageType when it is not
	// text.
	TypeHeader = "Rtkit-Type"
	// SeqHeader carries a message's topic sequence number.
	SeqHeader = "Rtkit-Seq"
	// maxCached bounds the per-topic positions the broker remembers.
	maxCached = 1 << 16
	// maxPublishTries bounds the attempts of one Publish that other
	// nodes' publishes to the same topic keep pre-empting.
	maxPublishTries = 64
	// timeoutHeader carries a relayed request's remaining time.
	timeoutHeader = "Rtkit-Timeout"
)

// Broker is a topics.Broker, topics.PresenceStore and realtime.Relay
// on NATS JetStream. Its methods are safe for concurrent use.
type Broker struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	o         Options
	directAPI string // "$JS.API.DIRECT.GET."

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines of the broker's

	mu      sync.Mutex
	closed  bool
	subs    map[*subscription]struct{}
	members map[string]*memberEntry // key: KV key; members this broker set

	cmu     sync.Mutex
	lasts   map[string]position // subject → its last message, as last seen
	cursors map[string]position // subject → where the last History read ended
}

// position is a message's place: its topic sequence and its stream
// sequence.
type position struct{ topic, stream uint64 }

var (
	_ topics.Broker          = (*Broker)(nil)
	_ topics.PresenceStore   = (*Broker)(nil)
	_ topics.PresenceExpirer = (*Broker)(nil)
	_ realtime.Relay         = (*Broker)(nil)
)

// New returns a broker on nc, whose server must have JetStream enabled.
// It creates (or updates) the presence bucket, so the server must be
// reachable. o may be nil. The broker does not own nc: close the broker,
// then nc.
func New(nc *nats.Conn, o *Options) (*Broker, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: nil connection")
	}
	var oo Options
	if o != nil {
		oo = *o
	}
	if oo.Prefix == "" {
		oo.Prefix = DefaultPrefix
	}
	for _, c := range []byte(oo.Prefix) {
		if !(isAlnum(c) || c == '-' || c == '_') {
			return nil, fmt.Errorf("natsbroker: invalid prefix %q: letters, digits, '-' and '_' only", oo.Prefix)
		}
	}
	if oo.History <= 0 {
		oo.History = topics.DefaultHistory
	}
	if oo.Replicas <= 0 {
		oo.Replicas = 1
	}
	if oo.PresenceTTL == 0 {
		oo.PresenceTTL = defaultPresenceTTL
	}
	if oo.Retention == 0 {
		oo.Retention = defaultRetention
	}
	if oo.Timeout <= 0 {
		oo.Timeout = defaultTimeout
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(oo.Timeout))
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	b := &Broker{
		nc: nc, js: js, o: oo,
		directAPI: jetstream.DefaultAPIPrefix + "DIRECT.GET.",
		subs:      map[*subscription]struct{}{},
		members:   map[string]*memberEntry{},
		lasts:     map[string]position{},
		cursors:   map[string]position{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), oo.Timeout)
	defer cancel()
	if err := b.ensureBucket(ctx); err != nil {
		return nil, err
	}
	if err := b.ensureStream(ctx); err != nil {
		return nil, err
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if oo.PresenceTTL > 0 {
		b.wg.Add(1)
		go b.refresh()
	}
	return b, nil
}

// Close ends the broker's subscriptions, relays and presence refreshing;
// its methods then return topics.ErrBrokerClosed. The members it set
// are not deleted: they expire after PresenceTTL. The connection stays
// open.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	b.cancel()
	for _, s := range subs {
		s.Close()
	}
	b.wg.Wait()
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// bound gives ctx the broker's Timeout when it has no deadline.
func (b *Broker) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.o.Timeout)
}

// names are what one topic is called in NATS.
type names struct {
	token   string // escaped topic, see the package doc
	subject string // P.m.<token>
	live    string // P.r.<token>
}

func (b *Broker) names(topic string) names {
	t := token(topic)
	return names{token: t, subject: b.o.Prefix + ".m." + t, live: b.o.Prefix + ".r." + t}
}

// stream is the name of the topics' stream.
func (b *Broker) stream() string { return b.o.Prefix + "_topics" }

// token is s escaped for use in subjects, stream names and KV keys.
func token(s string) string {
	if s == "" {
		return "_"
	}
	e := escape(s)
	if len(e) > maxEscaped {
		h := sha256.Sum256([]byte(s))
		return "_h" + hex.EncodeToString(h[:])
	}
	return e
}

// escape keeps lower-case letters, digits and '-' and writes every other
// byte as '_' and two hex digits.
func escape(s string) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('_')
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Publish appends m to topic's subject of the stream and returns its
// sequence number; see the package documentation for how it is assigned.
// It fails at once while the connection is down, and when ctx ends before
// the server acknowledges.
func (b *Broker) Publish(ctx context.Context, topic string, m realtime.Message) (uint64, error) {
	if b.isClosed() {
		return 0, topics.ErrBrokerClosed
	}
	if !b.nc.IsConnected() {
		return 0, fmt.Errorf("natsbroker: publish to %q: %w", topic, nats.ErrDisconnected)
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	n := b.names(topic)
	for try := 0; ; try++ {
		last, cached := b.cachedLast(n.subject)
		if !cached {
			var err error
			if last, err = b.lastOf(ctx, n.subject); err != nil {
				return 0, fmt.Errorf("natsbroker: publish to %q: %w", topic, err)
			}
		}
		msg := &nats.Msg{Subject: n.subject, Data: m.Data, Header: nats.Header{SeqHeader: []string{strconv.FormatUint(last.topic+1, 10)}}}
		if m.Type != realtime.TextMessage {
			msg.Header.Set(TypeHeader, strconv.Itoa(int(m.Type)))
		}
		ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(0), jetstream.WithExpectLastSequencePerSubject(last.stream))
		if err == nil {
			b.remember(n.subject, position{last.topic + 1, ack.Sequence})
			return last.topic + 1, nil
		}
		b.forget(n.subject)
		switch {
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			// The server lost the stream (memory storage, a restart).
			if err = b.ensureStream(ctx); err != nil {
				return 0, fmt.Errorf("natsbroker: publish to %q: %w", topic, err)
			}
		case wrongLast(err) && try < maxPublishTries:
			// Another node published first, or what was cached aged out.
		default:
			return 0, fmt.Errorf("natsbroker: publish to %q: %w", topic, err)
		}
	}
}

func wrongLast(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// ensureStream creates the topics' stream, or updates its limits.
func (b *Broker) ensureStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:              b.stream(),
		Description:       "rtkit topics: a subject per topic",
		Subjects:          []string{b.o.Prefix + ".m.>"},
		MaxMsgsPerSubject: int64(b.o.History),
		Discard:           jetstream.DiscardOld,
		Storage:           b.o.Storage,
		Replicas:          b.o.Replicas,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: b.o.Prefix + ".m.>", Destination: b.o.Prefix + ".r.>"},
	}
	if b.o.Retention > 0 {
		cfg.MaxAge = b.o.Retention
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("natsbroker: stream %s: %w", cfg.Name, err)
	}
	return nil
}

// cachedLast returns what the broker knows of subject's last message.
func (b *Broker) cachedLast(subject string) (position, bool) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	p, ok := b.lasts[subject]
	return p, ok
}

// remember records p as subject's last message, unless a later one is
// known.
func (b *Broker) remember(subject string, p position) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	if old, ok := b.lasts[subject]; ok && old.stream >= p.stream {
		return
	}
	if len(b.lasts) >= maxCached {
		clear(b.lasts) // a cache: the next Publish of each reads again
	}
	b.lasts[subject] = p
}

func (b *Broker) forget(subject string) {
	b.cmu.Lock()
	delete(b.lasts, subject)
	b.cmu.Unlock()
}

// lastOf reads subject's last message from the stream: its position, or
// zero when the subject has none (or there is no stream).
func (b *Broker) lastOf(ctx context.Context, subject string) (position, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	msg, err := b.nc.RequestWithContext(ctx, b.directAPI+b.stream(), req)
	if errors.Is(err, nats.ErrNoResponders) {
		return position{}, nil
	}
	if err != nil {
		return position{}, err
	}
	switch status := msg.Header.Get("Status"); status {
	case "":
	case "404", "503":
		return position{}, nil
	default:
		return position{}, fmt.Errorf("direct get from %s: %s %s", b.stream(), status, msg.Header.Get("Description"))
	}
	p, err := positionOf(msg.Header)
	if err == nil {
		b.remember(subject, p)
	}
	return p, err
}

// positionOf reads a stored message's position from its headers.
func positionOf(h nats.Header) (position, error) {
	t, err1 := strconv.ParseUint(h.Get(SeqHeader), 10, 64)
	s, err2 := strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	if err1 != nil || err2 != nil {
		return position{}, fmt.Errorf("message without its sequence numbers: %q %q", h.Get(SeqHeader), h.Get(jetstream.SequenceHeader))
	}
	return position{t, s}, nil
}

// typeOf reads a message's type from its header.
func typeOf(h nats.Header) realtime.MessageType {
	if v := h.Get(TypeHeader); v != "" {
		if t, err := strconv.Atoi(v); err == nil {
			return realtime.MessageType(t)
		}
	}
	return realtime.TextMessage
}

// subscription is a core NATS subscription on a topic's live subject.
type subscription struct {
	b       *Broker
	deliver func(topics.Entry)
	ns      *nats.Subscription
	subject string // the topic's subject in the stream

	mu     sync.Mutex // serialises deliveries with Close
	closed bool
}

// Subscribe delivers the messages published to topic once it has
// returned, one call at a time, in order; see the package documentation
// for what an outage skips. It creates no stream.
func (b *Broker) Subscribe(ctx context.Context, topic string, deliver func(topics.Entry)) (topics.Subscription, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, topics.ErrBrokerClosed
	}
	n := b.names(topic)
	s := &subscription{b: b, deliver: deliver, subject: n.subject}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	ns, err := b.nc.Subscribe(n.live, s.handle)
	if err == nil {
		s.mu.Lock()
		s.ns = ns
		s.mu.Unlock()
		// Once the server has the subscription, what is published reaches it.
		fctx, cancel := b.bound(ctx)
		err = b.nc.FlushWithContext(fctx)
		cancel()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("natsbroker: subscribe to %q: %w", topic, err)
	}
	return s, nil
}

func (s *subscription) handle(msg *nats.Msg) {
	p, err := positionOf(msg.Header)
	if err != nil || p.topic == 0 {
		return // not a republished message
	}
	s.b.remember(s.subject, p) // spares the next Publish a read
	e := topics.Entry{Seq: p.topic, Message: realtime.Message{Type: typeOf(msg.Header), Data: msg.Data}}
	s.mu.Lock()
	if !s.closed {
		s.deliver(e)
	}
	s.mu.Unlock()
}

// Close ends the subscription; deliver is not called once it returns.
func (s *subscription) Close() error {
	s.mu.Lock()
	s.closed = true
	ns := s.ns
	s.mu.Unlock()
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	if ns != nil {
		ns.Unsubscribe() // fails only when already gone
	}
	return nil
}

// History returns topic's kept messages after after, at most limit of
// them (limit <= 0: all kept): the subject's last message for Last, then
// batched direct gets from where the previous read of the topic ended, or
// from the subject's first message.
func (b *Broker) History(ctx context.Context, topic string, after uint64, limit int) (topics.History, error) {
	if b.isClosed() {
		return topics.History{}, topics.ErrBrokerClosed
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	n := b.names(topic)
	last, err := b.lastOf(ctx, n.subject)
	if err != nil {
		return topics.History{}, fmt.Errorf("natsbroker: history of %q: %w", topic, err)
	}
	h := topics.History{Last: last.topic}
	if after >= last.topic {
		return h, nil
	}
	start := uint64(1)
	b.cmu.Lock()
	if c, ok := b.cursors[n.subject]; ok && c.topic == after && c.stream < last.stream {
		start = c.stream + 1
	}
	b.cmu.Unlock()
	var end position // the last entry taken
read:
	for {
		want := maxBatch
		if limit > 0 {
			// From the subject's start, the entries up to after come first.
			want = min(want, limit-len(h.Entries)+int(min(after, uint64(b.o.History))))
		}
		bt, err := b.directBatch(ctx, b.stream(), directGet{Seq: start, NextFor: n.subject, Batch: max(want, 1)})
		if err != nil {
			return topics.History{}, fmt.Errorf("natsbroker: history of %q: %w", topic, err)
		}
		for i, e := range bt.entries {
			p, err := positionOf(bt.headers[i])
			if err != nil {
				return topics.History{}, fmt.Errorf("natsbroker: history of %q: %w", topic, err)
			}
			start = p.stream + 1
			if p.topic <= after || limit > 0 && len(h.Entries) >= limit {
				continue
			}
			if len(h.Entries) == 0 {
				h.Gap = p.topic > after+1
			} else if p.topic != end.topic+1 {
				break read // a reset meanwhile: stop before it
			}
			e.Seq = p.topic
			h.Entries = append(h.Entries, e)
			end = p
		}
		if len(bt.entries) == 0 || bt.last < start || limit > 0 && len(h.Entries) >= limit {
			break
		}
	}
	if len(h.Entries) == 0 {
		// Nothing kept after after although the topic goes on: aged out.
		h.Gap = true
		return h, nil
	}
	h.Last = max(h.Last, end.topic)
	b.cmu.Lock()
	if len(b.cursors) >= maxCached {
		clear(b.cursors)
	}
	b.cursors[n.subject] = end
	b.cmu.Unlock()
	return h, nil
}

// batch is the answer to a direct get.
type batch struct {
	entries  []topics.Entry
	headers  []nats.Header // entries' headers
	last     uint64        // the stream's last seq, as of the end of the batch
	noStream bool
}

// directGet is the JSON of a direct get request.
type directGet struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj,omitempty"` // a subject filter
	Batch   int    `json:"batch"`
}

// directBatch asks stream for up to r.Batch messages from r.Seq on.
func (b *Broker) directBatch(ctx context.Context, stream string, r directGet) (batch, error) {
	var bt batch
	inbox := b.nc.NewInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return bt, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(r)
	if err := b.nc.PublishRequest(b.directAPI+stream, inbox, req); err != nil {
		return bt, err
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) { // no stream
			bt.noStream = true
			return bt, nil
		}
		if err != nil {
			return bt, err
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "503": // no responders: no stream
			bt.noStream = true
			return bt, nil
		case "404": // nothing from seq on
			return bt, nil
		case "204": // end of batch
			np, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			lseq, _ := strconv.ParseUint(msg.Header.Get("Nats-Last-Sequence"), 10, 64)
			bt.last = lseq + np
			return bt, nil
		default:
			return bt, fmt.Errorf("direct get from %s: %s %s", stream, status, msg.Header.Get("Description"))
		}
		s, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return bt, fmt.Errorf("direct get from %s: bad sequence: %w", stream, err)
		}
		bt.entries = append(bt.entries, topics.Entry{Seq: s, Message: realtime.Message{Type: typeOf(msg.Header), Data: msg.Data}})
		bt.headers = append(bt.headers, msg.Header)
	}
}
