package realtime

import (
	"context"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/bridge"
)

// plugin is the core's side of the packages built on it: wire, the API
// for transports, and topics. Its methods are exported so that those
// packages can call them through bridge.Core; the type is not, so they
// stay out of this package's API.
type plugin struct{}

func init() { bridge.Core = plugin{} }

// Route-level entry points, for wire.Endpoint.

func (plugin) Options(rt *Route) *Options { return &rt.opts }

func (plugin) OriginAllowed(rt *Route, r *http.Request) bool { return rt.originAllowed(r) }

func (plugin) Accept(rt *Route, k Kind, r *http.Request) (*Conn, error) { return rt.admit(r, k) }

func (plugin) Resume(rt *Route, r *http.Request, token string) (*Conn, error) {
	s, err := rt.session(r, token)
	if err != nil {
		return nil, err
	}
	return s.c, nil
}

func (plugin) ReadMessage(rt *Route, w http.ResponseWriter, r *http.Request) (Message, error) {
	return rt.readMessage(w, r)
}

// Connection-level entry points, for wire.Link.

func (plugin) Abort(c *Conn) { c.abort() }

func (plugin) Open(c *Conn, w interface {
	Write(msgs []Message) error
	Close(code int, reason string) error
}) {
	c.open(w)
}

func (plugin) Start(c *Conn, r interface {
	Write(msgs []Message) error
	Close(code int, reason string) error
	Read() (Message, error)
}) {
	c.start(r)
}

func (plugin) Receive(c *Conn, m Message) { c.receiveSync(m) }

func (plugin) Closed(c *Conn, err error) { c.finish(err) }

func (plugin) OpenSession(c *Conn, r *http.Request) string { return c.openSession(r) }

func (plugin) Attach(c *Conn, exclusive bool) (uint64, error) {
	if c.sess == nil {
		return 0, errNoSession
	}
	kind := attachStream
	if exclusive {
		kind = attachPoll
	}
	return c.sess.attach(kind)
}

// Follows reports whether token names a session that rt can follow on
// another node.
func (plugin) Follows(rt *Route, token string) bool { return rt.follows(token) }

// FollowNext reads a session that lives on another node (see follow.go).
func (plugin) FollowNext(rt *Route, r *http.Request, token string, ctx context.Context, after uint64, hold time.Duration, gen *uint64, each func(seq uint64, m Message)) (gap bool, gapAfter uint64, closed *CloseError, err error) {
	return rt.followNext(ctx, r, token, after, hold, gen, each)
}

// Next reads the session after the cursor for attachment gen and hands
// each entry to each, in order.
func (plugin) Next(c *Conn, gen uint64, ctx context.Context, after uint64, each func(seq uint64, m Message)) (gap bool, gapAfter uint64, closed *CloseError, err error) {
	b, err := c.sess.read(ctx, gen, after)
	if err != nil {
		return false, 0, nil, err
	}
	for _, e := range b.entries {
		each(e.seq, e.Message)
	}
	return b.gap, b.gapAfter, b.close, nil
}

func (plugin) Detach(c *Conn, gen uint64) { c.sess.detach(gen) }

// Message-level entry points, for wire.Encoded.

func (plugin) Encoded(m Message, k Kind, encode func(Message) (any, error)) (any, error) {
	return m.encoded(k, encode)
}

func (plugin) IsShared(m Message) bool { return m.shared != nil }

// Entry points for topics.

func (plugin) ConnOptions(c *Conn) *Options { return c.opts }

func (plugin) OnClose(c *Conn, f func()) (remove func()) { return c.onClose(f) }

// SendLive queues topic messages under the connection's overflow policy,
// except that a topic never waits for one slow connection: Block closes it
// instead. It returns how many were queued.
func (plugin) SendLive(c *Conn, msgs []Message) (int, error) {
	p := c.opts.Overflow
	if p == OverflowBlock {
		p = OverflowClose
	}
	return c.sendAll(msgs, p)
}

// Observe reports an event about c through its route's Observer.
func (plugin) Observe(c *Conn, e Event) { c.observe(e) }

func (plugin) SendPaced(c *Conn, ctx context.Context, msgs []Message) error {
	return c.sendPaced(ctx, msgs)
}
