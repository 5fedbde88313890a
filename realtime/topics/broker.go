package topics

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Entry is a topic message with its sequence number, which starts at 1 and
// grows by one per message.
type Entry struct {
	Seq uint64
	realtime.Message
}

// ErrBrokerClosed is returned by a Broker's methods after Close.
var ErrBrokerClosed = errors.New("topics: broker closed")

// Broker carries topic messages between the nodes that share it and keeps
// each topic's recent history. The in-memory broker (NewMemoryBroker)
// serves one process; the NATS and Redis brokers (packages under
// realtime/broker) serve a cluster. Topics builds fan-out, resume and
// presence on top of any Broker.
type Broker interface {
	// Publish appends m to topic's history and delivers it to the topic's
	// subscriptions on every node. It returns the sequence number m got:
	// per topic, from 1, one more than the message before it.
	Publish(ctx context.Context, topic string, m realtime.Message) (seq uint64, err error)
	// Subscribe calls deliver with the messages published to topic from
	// about the time it returns, in order, one call at a time. deliver must
	// return quickly and must not call the broker. After an outage a
	// subscription may skip messages; Topics notices the jump in sequence
	// numbers and fetches what is missing from History.
	Subscribe(ctx context.Context, topic string, deliver func(Entry)) (Subscription, error)
	// History returns the topic's kept messages with sequence numbers above
	// after, in order, at most limit of them (limit <= 0: all kept).
	History(ctx context.Context, topic string, after uint64, limit int) (History, error)
	// Close releases the broker's resources.
	Close() error
}

// Subscription is a Broker subscription.
type Subscription interface {
	// Close ends the subscription; deliver is not called once it returns.
	Close() error
}

// History is what Broker.History returns.
type History struct {
	// Entries are the kept messages after the asked position, in order.
	Entries []Entry
	// Gap reports that some messages after the asked position are no
	// longer kept: Entries (if any) start after a hole.
	Gap bool
	// Last is the topic's latest sequence number (0 for none yet).
	Last uint64
}

// PresenceMessage is the type of the messages Topics publishes when a
// member joins or leaves a topic. Brokers carry a message's Type as they
// carry its Data; connections never send it.
const PresenceMessage realtime.MessageType = 16

// PresenceStore is implemented by brokers that share presence between
// nodes. Topics keeps presence locally when its broker does not.
type PresenceStore interface {
	// SetMember records member as present in topic.
	SetMember(ctx context.Context, topic string, m Member) error
	// DeleteMember removes the member with the given id from topic.
	DeleteMember(ctx context.Context, topic, id string) error
	// Members lists topic's members, in no particular order.
	Members(ctx context.Context, topic string) ([]Member, error)
}

// Member is one connection present in a topic.
type Member struct {
	// ID is the member's connection id.
	ID string `json:"id"`
	// Info is what the application says about the member, as JSON (a
	// user name, say); it reaches every subscriber.
	Info json.RawMessage `json:"info,omitempty"`
}

// PresenceExpirer is implemented by presence stores whose members expire
// when their node stops refreshing them (it crashed, or lost the broker
// for longer than the TTL). Topics then publishes the leaves of expired
// members: every node that has subscribers to a topic calls ExpireMembers
// for it every PresenceTTL/2, so a dead node's members leave within about
// 1.5 PresenceTTL of its last refresh, and at the latest 2 PresenceTTL
// after it died.
type PresenceExpirer interface {
	PresenceStore
	// ExpireMembers removes topic's expired members and returns them.
	// Each expired member is returned by one call only, on whichever node
	// calls first.
	ExpireMembers(ctx context.Context, topic string) ([]Member, error)
	// PresenceTTL is how long a member stays without its node refreshing
	// it; zero or less means members never expire.
	PresenceTTL() time.Duration
}
