package wire

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/bridge"
	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// coreAPI lists the core's entry points this package uses (see package
// bridge).
type coreAPI interface {
	Options(rt *realtime.Route) *realtime.Options
	OriginAllowed(rt *realtime.Route, r *http.Request) bool
	Accept(rt *realtime.Route, k realtime.Kind, r *http.Request) (*realtime.Conn, error)
	Resume(rt *realtime.Route, r *http.Request, token string) (*realtime.Conn, error)
	ReadMessage(rt *realtime.Route, w http.ResponseWriter, r *http.Request) (realtime.Message, error)

	Abort(c *realtime.Conn)
	Open(c *realtime.Conn, w interface {
		Write(msgs []realtime.Message) error
		Close(code int, reason string) error
	})
	Start(c *realtime.Conn, r interface {
		Write(msgs []realtime.Message) error
		Close(code int, reason string) error
		Read() (realtime.Message, error)
	})
	Receive(c *realtime.Conn, m realtime.Message)
	Closed(c *realtime.Conn, err error)
	OpenSession(c *realtime.Conn, r *http.Request) string
	Attach(c *realtime.Conn, exclusive bool) (uint64, error)
	Next(c *realtime.Conn, gen uint64, ctx context.Context, after uint64, each func(seq uint64, m realtime.Message)) (gap bool, gapAfter uint64, closed *realtime.CloseError, err error)
	Detach(c *realtime.Conn, gen uint64)
	Follows(rt *realtime.Route, token string) bool
	FollowNext(rt *realtime.Route, r *http.Request, token string, ctx context.Context, after uint64, hold time.Duration, gen *uint64, each func(seq uint64, m realtime.Message)) (gap bool, gapAfter uint64, closed *realtime.CloseError, err error)

	Encoded(m realtime.Message, k realtime.Kind, encode func(realtime.Message) (any, error)) (any, error)
	IsShared(m realtime.Message) bool
}

var core = bridge.Core.(coreAPI)

// Session errors, for transports to answer with a status.
var (
	// ErrUnknownSession is returned by Endpoint.Resume for a token that no
	// live session of the route holds, or that is bound to another origin
	// or identity: answer 404.
	ErrUnknownSession = protocol.ErrUnknownSession
	// ErrConflict is returned by Link.Attach while the session has an
	// exclusive attachment (a second concurrent long-poll): answer 409.
	ErrConflict = protocol.ErrConflict
	// ErrSuperseded ends an attachment replaced by a newer one, such as an
	// SSE stream resumed on a fresh request.
	ErrSuperseded = protocol.ErrSuperseded
)

// Conn is the transport's side of one connection, used by the core.
//
// Write is called by one goroutine at a time. Close may be called
// concurrently with Write (and Read), and more than once; the first call
// wins.
type Conn interface {
	// Write sends msgs to the peer in order, within Options.WriteTimeout.
	// An error ends the connection.
	Write(msgs []realtime.Message) error
	// Close tells the peer the close code and reason when the protocol can
	// and ends the connection within a bounded time, so that Read returns
	// an error (for a Reader) or the transport calls Link.Closed. Once the
	// connection has ended the core calls Close once more: then it must
	// release everything at once, so that blocked writes return.
	Close(code int, reason string) error
}

// TryWriter is a Conn that can write without waiting for its peer. The
// core then writes a message on the goroutine that sends it, when no
// other write is under way, instead of waking a writer goroutine: that
// wake-up is most of the cost of a fan-out that sends one message at a
// time.
//
// TryWrite writes msgs as Write does, but never waits for the peer (nor
// for a write of its own under way): it reports true when all of them are
// on their way, and false when it kept what it could not write without
// waiting. The core then calls Write next, with more messages or none,
// from a goroutine that may wait, and Write must send what TryWrite kept
// first. TryWrite must not retain msgs itself; an error ends the
// connection, as from Write. TryWrite and Write never overlap.
type TryWriter interface {
	Conn
	TryWrite(msgs []realtime.Message) (bool, error)
}

// Reader is a Conn whose peer's messages arrive on the same connection
// (WebSocket). The core reads it itself (see Link.Start), so that it can
// go on reading while a callback is slow.
type Reader interface {
	Conn
	// Read blocks until the peer's next message and returns it, or
	// returns the error that ended the connection: a *realtime.CloseError
	// from the peer, realtime.ErrPingTimeout, realtime.ErrReadLimit or a
	// network error. Calls never overlap, but successive calls may come
	// from different goroutines.
	//
	// The core stops calling Read while the handler's inbox is full (the
	// server is then the slow side, and TCP pushes back on the peer).
	// Transports that check the peer's liveness must count only the time
	// spent inside Read, so that such a pause never fails the peer's
	// keepalive.
	Read() (realtime.Message, error)
}

// Parker is a Reader that can give back the goroutine that reads it
// while the peer is quiet, so that an idle connection costs no stack.
// The core then reads with ReadOrPark instead of Read.
//
// ReadOrPark is Read, except that instead of waiting for a message it may
// arrange for resume to be called once there is something to read (or
// the connection fails) and return parked true at once, without a
// message. The core's reading goroutine then ends, and resume starts
// another that calls ReadOrPark again. resume must be called exactly once
// per park, never from inside ReadOrPark, and the wire must call it when
// it closes a parked connection, so that the core reads the end. Only
// the time until resume counts as inside Read for the keepalive.
type Parker interface {
	Reader
	ReadOrPark(resume func()) (m realtime.Message, parked bool, err error)
}

// Describer is implemented by transport handlers that tell negotiating
// clients where they are: the route's answer to a plain GET lists, for
// each, its kind and the URL Describe returns (relative to r's).
type Describer interface {
	Describe(r *http.Request) string
}

// Endpoint is a route as one transport sees it: the way to admit
// connections and the route's resolved options.
type Endpoint struct {
	rt   *realtime.Route
	kind realtime.Kind
}

// NewEndpoint returns rt's endpoint for the transport of kind k.
// Transports make it in their Bind.
func NewEndpoint(rt *realtime.Route, k realtime.Kind) *Endpoint {
	return &Endpoint{rt: rt, kind: k}
}

// Kind is the transport this endpoint serves.
func (ep *Endpoint) Kind() realtime.Kind { return ep.kind }

// Options returns the route's options with every default filled in. The
// result must not be modified.
func (ep *Endpoint) Options() *realtime.Options { return core.Options(ep.rt) }

// OriginAllowed reports whether the route accepts a request from r's
// Origin. The route checks it before a transport sees a request;
// transports call it for requests that reach them another way.
func (ep *Endpoint) OriginAllowed(r *http.Request) bool { return core.OriginAllowed(ep.rt, r) }

// Accept admits a new connection for request r and reserves its place under
// Options.MaxConns. It returns realtime.ErrTooManyConns or
// realtime.ErrServerClosed when the route cannot take it; the transport
// then answers 503 without upgrading.
func (ep *Endpoint) Accept(r *http.Request) (*Link, error) {
	c, err := core.Accept(ep.rt, ep.kind, r)
	if err != nil {
		return nil, err
	}
	return &Link{c: c}, nil
}

// Resume returns the connection of the session that token names, if r may
// act on it (same origin and identity as the request that opened it), or
// ErrUnknownSession. The transport then attaches to it with Link.Attach.
func (ep *Endpoint) Resume(r *http.Request, token string) (*Link, error) {
	c, err := core.Resume(ep.rt, r, token)
	if err != nil {
		return nil, err
	}
	return &Link{c: c}, nil
}

// Follow returns an attachment to the session that token names on
// another node of the route's cluster (Options.Relay), for a client that
// came back to this node rather than the one that opened its session (a
// dropped SSE stream resumed through a round-robin balancer): its Next
// reads the session from its owner, after cursor, exactly as from a local
// one. It returns ErrUnknownSession when no node holds such a session
// that r may act on; then the transport starts a new session.
func (ep *Endpoint) Follow(r *http.Request, token string, cursor uint64) (*Attachment, error) {
	if !core.Follows(ep.rt, token) {
		return nil, ErrUnknownSession
	}
	a := &Attachment{ep: ep, r: r, token: token}
	// A first read, that waits for nothing, finds out whether the session
	// is there; what it read is the first batch Next returns.
	b, err := a.followNext(r.Context(), cursor, 0)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	if len(b.Entries) > 0 || b.Gap || b.Close != nil {
		a.pending = &b
	}
	return a, nil
}

// WithTimeout is context.WithTimeout on the route's clock
// (Options.Clock): the context ends with context.DeadlineExceeded after
// d, or when ctx ends. Keepalives and long-poll holds use it, so tests
// drive them with a fake clock.
func (ep *Endpoint) WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	t := ep.Options().Clock.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return clockContext{cctx}, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// clockContext reports the cause of its end as its error, so that a
// deadline on a fake clock reads as context.DeadlineExceeded.
type clockContext struct{ context.Context }

func (c clockContext) Err() error {
	if c.Context.Err() == nil {
		return nil
	}
	return context.Cause(c.Context)
}

// ReadMessage reads a message from r's body as POST-backs and
// request/response carry it: binary when the Content-Type is
// application/octet-stream, text (refused unless valid UTF-8) otherwise.
// The body may be at most Options.ReadLimit bytes (more returns an
// *http.MaxBytesError: answer 413) and must arrive within
// Options.ReadTimeout.
func (ep *Endpoint) ReadMessage(w http.ResponseWriter, r *http.Request) (realtime.Message, error) {
	return core.ReadMessage(ep.rt, w, r)
}

// Encoded returns encode(m), computed once per transport kind for a
// message made by realtime.Shared (a broadcast) and on every call
// otherwise. Transports encode messages for the wire with it, so a
// broadcast to ten thousand connections is framed once.
func Encoded(m realtime.Message, k realtime.Kind, encode func(realtime.Message) (any, error)) (any, error) {
	return core.Encoded(m, k, encode)
}

// IsShared reports whether m was made by realtime.Shared.
func IsShared(m realtime.Message) bool { return core.IsShared(m) }

// Refuse answers a request that Endpoint.Accept refused with err, as a
// JSON error: 429 Too Many Requests when the client is over its cap
// (realtime.ErrClientLimit), 503 Service Unavailable when the route is
// full or shutting down, both with Retry-After.
func Refuse(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	if errors.Is(err, realtime.ErrClientLimit) {
		status = http.StatusTooManyRequests
	}
	w.Header().Set("Retry-After", retryAfterRefusal)
	realtime.WriteError(w, status, err.Error())
}

// retryAfterRefusal is the Retry-After of a refused connection, in
// seconds.
const retryAfterRefusal = "5"
