package topics

import (
	"context"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Observe returns b reporting each of its Publish, History and Subscribe
// calls to o as a realtime.EventPublish (Op "publish", "history" or
// "subscribe", with the call's Duration and Err), for metrics of broker
// latency and errors:
//
//	ts := topics.New(topics.Observe(broker, obs))
//
// The broker returned implements the same optional interfaces as b does
// (PresenceStore and its expiry, realtime.Relay), passed through
// unobserved, so it can be used wherever b was, Options.Relay included.
func Observe(b Broker, o realtime.Observer) Broker {
	ob := &observed{Broker: b, o: o}
	store, isStore := b.(PresenceStore)
	exp, isExp := b.(expiringStore)
	relay, isRelay := b.(realtime.Relay)
	switch {
	case isExp && isRelay:
		return struct {
			*observed
			expiringStore
			realtime.Relay
		}{ob, exp, relay}
	case isExp:
		return struct {
			*observed
			expiringStore
		}{ob, exp}
	case isStore && isRelay:
		return struct {
			*observed
			PresenceStore
			realtime.Relay
		}{ob, store, relay}
	case isStore:
		return struct {
			*observed
			PresenceStore
		}{ob, store}
	case isRelay:
		return struct {
			*observed
			realtime.Relay
		}{ob, relay}
	}
	return ob
}

// expiringStore is a presence store whose members expire (the methods of
// PresenceExpirer), passed through by Observe.
type expiringStore interface {
	PresenceStore
	ExpireMembers(ctx context.Context, topic string) ([]Member, error)
	PresenceTTL() time.Duration
}

// observed times the calls of a Broker.
type observed struct {
	Broker
	o realtime.Observer
}

func (b *observed) report(op string, start time.Time, err error) {
	b.o.Observe(realtime.Event{Kind: realtime.EventPublish, Op: op, Duration: time.Since(start), Err: err})
}

func (b *observed) Publish(ctx context.Context, topic string, m realtime.Message) (uint64, error) {
	start := time.Now()
	seq, err := b.Broker.Publish(ctx, topic, m)
	b.report("publish", start, err)
	return seq, err
}

func (b *observed) Subscribe(ctx context.Context, topic string, deliver func(Entry)) (Subscription, error) {
	start := time.Now()
	s, err := b.Broker.Subscribe(ctx, topic, deliver)
	b.report("subscribe", start, err)
	return s, err
}

func (b *observed) History(ctx context.Context, topic string, after uint64, limit int) (History, error) {
	start := time.Now()
	h, err := b.Broker.History(ctx, topic, after, limit)
	b.report("history", start, err)
	return h, err
}
