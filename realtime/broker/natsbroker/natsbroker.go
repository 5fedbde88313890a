// Package natsbroker is a topics.Broker on NATS JetStream: topics,
// history, presence and request relaying shared by every node connected to
// the same NATS system.
//
// # Layout
//
// Everything the broker creates is named after Options.Prefix (P, "rtkit"
// by default) and a token made from the topic name: the topic escaped to
// letters, digits and '-' (every other byte, upper-case letters included,
// becomes '_' and two hex digits, so that names stay distinct on
// case-insensitive file systems), "_" for the empty topic, or "_h" and the
// SHA-256 of the topic in hex when the escaped name would be longer than
// 128 bytes.
//
//	P_<token>            one JetStream stream per topic
//	P.t.<token>          the stream's subject: Publish sends here
//	P.r.<token>          the stream's RePublish destination: Subscribe listens here
//	P_presence           the KV bucket of presence, keys <token>.<escaped member id>
//	P.node.<node>        the subject a node's relay answers on
//
// # Publish
//
// A topic has its own stream, so JetStream's stream sequence is the topic's
// sequence: 1, 2, 3 … without holes (streams keep the last Options.History
// messages, discarding the oldest, and are never edited otherwise). A
// stream is created on the first Publish that finds none (JetStream
// answers "no responders" at once), never by Subscribe or History. The
// message type travels in the Rtkit-Type header (absent for text).
//
// Publish is a JetStream request: it returns the sequence from the
// stream's acknowledgement, or an error. Publishers get errors during an
// outage and nothing is buffered by the broker: Publish fails at once when
// the connection is not connected, and otherwise when ctx ends (or after
// Options.Timeout if ctx has no deadline). Connect with
// nats.ReconnectBufSize(-1) so that the NATS client does not buffer either:
// with its default 8 MiB reconnect buffer, a message sent just as the
// connection drops may still reach the stream after Publish has reported an
// error (it then gets a sequence number and is delivered like any other).
//
// # Subscribe
//
// Each stream republishes what it stores, with the stream sequence in the
// Nats-Sequence header, to P.r.<token>; Subscribe is a plain core NATS
// subscription on that subject. This was chosen over a JetStream ordered
// consumer per subscription because it needs no server state and no
// stream (a topic nobody has published to yet can be subscribed to), adds
// no consumer round trips to the publish-to-delivery path, and the
// server republishes in stream order from the stream leader. What it does
// not do is fill holes: messages republished while the connection is down,
// or dropped by the client as a slow consumer, are skipped. That is the
// Broker contract; topics.Topics notices the jump in sequence numbers and
// fetches the missing messages from History. The NATS client resubscribes
// by itself after a reconnect.
//
// # History
//
// History is one batched JetStream direct get (the stream allows direct
// access): the messages from after+1, at most limit, each with its
// sequence, then an end-of-batch marker that tells how many more there are,
// so Last comes with them. When nothing follows after, Last comes from the
// stream's info. A topic without a stream has an empty history and Last 0.
// Direct gets may be answered by any replica: with Replicas > 1 a follower
// can trail the leader by a moment, so a History call right after a
// Publish may miss its newest messages.
//
// # Presence
//
// Members are values of the KV bucket P_presence (one key per topic and
// member; Members reads a topic's keys with batched direct gets on the
// bucket's stream, filtered by subject). Every broker
// refreshes the members it set itself each Options.PresenceTTL/3 and the
// bucket expires values older than PresenceTTL, so the members of a node
// that crashed (or closed without its connections leaving) disappear from
// Members within PresenceTTL. No leave envelope is published for them: the
// other nodes do not notice the expiry. A refresh is a compare-and-set on
// the revision the broker wrote, so a member deleted or set anew by
// another node is not brought back; one that expired because refreshes
// failed for longer than PresenceTTL (an outage) is written again.
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
// presence.
package natsbroker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// History is how many messages each topic keeps (the stream's MaxMsgs,
	// oldest discarded first); topics.DefaultHistory if <= 0. It applies
	// when a topic's stream is created: existing streams keep theirs.
	History int
	// Replicas is the number of copies JetStream keeps of each topic
	// stream and of the presence bucket, 1 if <= 0 (a clustered
	// deployment wants 3).
	Replicas int
	// Storage is where JetStream keeps streams: jetstream.FileStorage (the
	// zero value; history survives a server restart) or
	// jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// PresenceTTL is how long a member stays in the presence bucket without
	// its node refreshing it; the broker refreshes its own members every
	// PresenceTTL/3. 0 means one minute; negative disables expiry and
	// refreshing (the members of a crashed node then stay until deleted).
	// It is the bucket's MaxAge: brokers sharing a prefix must agree on it.
	PresenceTTL time.Duration
	// Timeout bounds the calls the broker makes without a caller's
	// deadline: New's set-up, presence refreshes, and any call whose
	// context has no deadline. 5 seconds if <= 0.
	Timeout time.Duration
}

// DefaultPrefix is the Prefix used when Options.Prefix is empty.
const DefaultPrefix = "rtkit"

const (
	defaultPresenceTTL = time.Minute
	defaultTimeout     = 5 * time.Second
	// maxEscaped is the longest escaped topic used as is in names.
	maxEscaped = 128
	// maxBatch is the most messages one direct get asks for.
	maxBatch = 4096
	// TypeHeader carries a message's realtime.MessageType when it is not
	// text.
	TypeHeader = "Rtkit-Type"
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
}

var (
	_ topics.Broker        = (*Broker)(nil)
	_ topics.PresenceStore = (*Broker)(nil)
	_ realtime.Relay       = (*Broker)(nil)
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
	}
	ctx, cancel := context.WithTimeout(context.Background(), oo.Timeout)
	defer cancel()
	if err := b.ensureBucket(ctx); err != nil {
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
	stream  string // P_<token>
	subject string // P.t.<token>
	live    string // P.r.<token>
}

func (b *Broker) names(topic string) names {
	t := token(topic)
	return names{token: t, stream: b.o.Prefix + "_" + t, subject: b.o.Prefix + ".t." + t, live: b.o.Prefix + ".r." + t}
}

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

// Publish appends m to topic's stream, creating the stream if there is
// none, and returns its sequence number. It fails at once while the
// connection is down, and when ctx ends before the server acknowledges.
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
	msg := &nats.Msg{Subject: n.subject, Data: m.Data}
	if m.Type != realtime.TextMessage {
		msg.Header = nats.Header{TypeHeader: []string{strconv.Itoa(int(m.Type))}}
	}
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(0))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// No stream listens on the subject: the topic's first message.
		if err = b.createStream(ctx, topic, n); err == nil {
			ack, err = b.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(0))
		}
	}
	if err != nil {
		return 0, fmt.Errorf("natsbroker: publish to %q: %w", topic, err)
	}
	return ack.Sequence, nil
}

// createStream creates topic's stream; one that exists already is fine.
func (b *Broker) createStream(ctx context.Context, topic string, n names) error {
	cfg := jetstream.StreamConfig{
		Name:        n.stream,
		Description: "rtkit topic history",
		Subjects:    []string{n.subject},
		MaxMsgs:     int64(b.o.History),
		Discard:     jetstream.DiscardOld,
		Storage:     b.o.Storage,
		Replicas:    b.o.Replicas,
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: n.subject, Destination: n.live},
	}
	if len(topic) <= 1024 {
		cfg.Metadata = map[string]string{"rtkit_topic": topic}
	}
	_, err := b.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		err = nil // created meanwhile, maybe by another node, or with other limits
	}
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", n.stream, err)
	}
	return nil
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
	s := &subscription{b: b, deliver: deliver}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	ns, err := b.nc.Subscribe(b.names(topic).live, s.handle)
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
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return // not a republished message
	}
	e := topics.Entry{Seq: seq, Message: realtime.Message{Type: typeOf(msg.Header), Data: msg.Data}}
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
// them (limit <= 0: all kept), with one batched direct get.
func (b *Broker) History(ctx context.Context, topic string, after uint64, limit int) (topics.History, error) {
	if b.isClosed() {
		return topics.History{}, topics.ErrBrokerClosed
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	n := b.names(topic)
	var h topics.History
	if after == math.MaxUint64 {
		last, err := b.lastSeq(ctx, n)
		h.Last = last
		return h, err
	}
	next, end := after+1, uint64(0) // end: the last seq to read, from the first batch
	for retried := false; ; {
		want := maxBatch
		if limit > 0 {
			want = min(want, limit-len(h.Entries))
		}
		bt, err := b.directBatch(ctx, n.stream, directGet{Seq: next, Batch: want})
		if err != nil {
			return topics.History{}, fmt.Errorf("natsbroker: history of %q: %w", topic, err)
		}
		if bt.noStream {
			return topics.History{}, nil
		}
		if len(bt.entries) == 0 {
			if len(h.Entries) > 0 {
				return h, nil // the rest went meanwhile
			}
			// Nothing from next on: after is the last, or beyond it.
			last, err := b.lastSeq(ctx, n)
			if err != nil {
				return topics.History{}, fmt.Errorf("natsbroker: history of %q: %w", topic, err)
			}
			if after < last && !retried {
				// A message stored between the read and the look at the
				// stream's end: read again rather than report a gap.
				retried = true
				continue
			}
			h.Last = last
			h.Gap = after < last
			return h, nil
		}
		if len(h.Entries) == 0 {
			h.Gap = bt.entries[0].Seq > after+1
			end = bt.last
		} else if bt.entries[0].Seq != next {
			return h, nil // a hole between batches: stop before it
		}
		h.Entries = append(h.Entries, bt.entries...)
		h.Last = max(h.Last, bt.last)
		next = bt.entries[len(bt.entries)-1].Seq + 1
		if bt.last < next || next > end || limit > 0 && len(h.Entries) >= limit {
			return h, nil
		}
	}
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

// lastSeq is the stream's last sequence number, 0 if it does not exist.
func (b *Broker) lastSeq(ctx context.Context, n names) (uint64, error) {
	s, err := b.js.Stream(ctx, n.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("natsbroker: stream %s: %w", n.stream, err)
	}
	return s.CachedInfo().State.LastSeq, nil
}
