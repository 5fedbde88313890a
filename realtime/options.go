package realtime

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// OverflowPolicy says what Send does when a connection's send queue is full,
// that is when the peer reads slower than the handler sends.
type OverflowPolicy int

const (
	// OverflowClose closes the slow connection with ClosePolicyViolation and
	// the cause ErrQueueFull. It is the default: it protects the server and
	// never loses a message silently.
	OverflowClose OverflowPolicy = iota
	// OverflowDropOldest discards the oldest queued message to make room,
	// for streams where only the latest values matter (dashboards).
	OverflowDropOldest
	// OverflowDropNewest refuses the new message: Send returns ErrQueueFull
	// and the connection stays open.
	OverflowDropNewest
	// OverflowBlock makes Send wait for room, at most Options.WriteTimeout,
	// then return ErrQueueFull.
	OverflowBlock
)

// String names the policy.
func (p OverflowPolicy) String() string {
	switch p {
	case OverflowClose:
		return "close"
	case OverflowDropOldest:
		return "drop-oldest"
	case OverflowDropNewest:
		return "drop-newest"
	case OverflowBlock:
		return "block"
	}
	return "invalid"
}

// Options configure a route. The zero value, and a nil *Options, is a safe
// configuration: every zero field means the default its comment states.
// Negative durations and limits switch a feature off where the comment says
// so.
type Options struct {
	// Transports lists the transports the route serves, each with its own
	// options, in the order clients should try them: for example
	// []realtime.Transport{websocket.New(websocket.Options{}),
	// sse.New(sse.Options{})}. It must not be empty; the presets of package
	// transports fill it for the seed's use cases.
	Transports []Transport

	// AllowedOrigins lists the origins (scheme://host[:port]) that browsers
	// may connect from, besides the route's own. Nil allows same-origin
	// requests only; "*" allows any origin. Requests without an Origin
	// header (non-browser clients) are always allowed.
	AllowedOrigins []string
	// CheckOrigin, when set, replaces the AllowedOrigins check.
	CheckOrigin func(r *http.Request) bool

	// ReadLimit is the largest message accepted from the peer, in bytes.
	// Zero means 64 KiB; a larger message closes the connection with
	// CloseTooBig.
	ReadLimit int64
	// SendQueue is the most messages queued for one connection. Zero means
	// 256.
	SendQueue int
	// SendQueueBytes is the most bytes queued for one connection. Zero means
	// 4 MiB.
	SendQueueBytes int
	// Overflow is what happens when the send queue is full. The zero value
	// is OverflowClose. It judges live messages only: topic catch-up and
	// session replay stream at the peer's pace and never overflow.
	Overflow OverflowPolicy

	// Inbox is the most messages received from the peer and waiting for
	// the handler while a callback runs. Zero means 64. When it is full
	// the transport stops reading (TCP then slows the peer down; the
	// pause does not count against the peer's keepalive) and a POSTed
	// message is refused with 429 and Retry-After, for the client to send
	// again.
	Inbox int
	// InboxBytes is the most bytes of messages waiting in the inbox (one
	// message always fits). Zero means 1 MiB or ReadLimit, whichever is
	// larger.
	InboxBytes int

	// PingInterval is how often the server pings an idle peer. Zero means
	// 25 seconds; negative disables pings.
	PingInterval time.Duration
	// PongTimeout is how long past a ping the peer has to show life before
	// the connection is closed with ErrPingTimeout. Zero means 10 seconds.
	PongTimeout time.Duration
	// WriteTimeout bounds every write to the peer, and how long Send may
	// block under OverflowBlock. Zero means 10 seconds.
	WriteTimeout time.Duration
	// MaxConns is the most live connections on the route, sessions
	// included; more are refused with 503 Service Unavailable (a WebSocket
	// upgrade is answered with a close frame, 1013 "too many
	// connections", which browsers can read). Zero means 20,000; negative
	// means no limit.
	MaxConns int
	// MaxConnsPerClient is the most live connections one client may hold
	// on the route; more are refused with 429 Too Many Requests (1013 on
	// WebSocket). A client is its address (see TrustedProxies), or what
	// ClientKey says. Zero means 100; negative means no limit.
	MaxConnsPerClient int
	// ClientKey, when set, names the client a request comes from, for
	// MaxConnsPerClient: a user id that authentication middleware
	// established, say, so that users behind one NAT do not share a cap.
	// Nil means the client's IP address.
	ClientKey func(r *http.Request) string
	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server. A request that comes from one of them is taken at its
	// X-Forwarded-For (the client's address), X-Forwarded-Proto and
	// X-Forwarded-Host (the scheme and host the browser used, for the
	// origin check) headers; those headers are ignored from anyone else.
	TrustedProxies []netip.Prefix
	// ReadTimeout bounds reading a request's body: a POST-back, a DELETE,
	// a request/response POST, so that a client trickling a body cannot
	// hold a request. Zero means 10 seconds.
	ReadTimeout time.Duration

	// ResumeBuffer is how many sent messages a session keeps so that a
	// client that reconnects (SSE, long-polling) receives what it missed.
	// Zero means SendQueue. Beyond it the client gets an explicit gap.
	ResumeBuffer int
	// ResumeWindow is how long a session without a live request (a dropped
	// SSE stream, the time between two polls) waits to be resumed before
	// its connection closes. Zero means 30 seconds. A new session waits
	// for its first request (the stream that opened it, a first poll) for
	// the resume window too, but at least a second and at most ten.
	ResumeWindow time.Duration
	// Identity, when set, names the identity that middleware established
	// for a request, such as a user id. A session token is then honoured
	// only on requests with the same identity as the one that opened it.
	Identity func(r *http.Request) string
	// Relay, when set, joins the route to a cluster: every node serves the
	// route with a Relay on the same broker, and a session request (an SSE
	// POST-back or DELETE, a long-poll) that reaches a node which does not
	// hold its session is forwarded to the node that does, so no sticky
	// sessions are needed. Session tokens name their node. An SSE stream
	// resumed on another node is streamed from the session's node through
	// the relay, without loss within ResumeBuffer; topics resume on any
	// node by their sequence numbers.
	Relay Relay

	// Name names the route in metrics and log lines. Empty means the
	// pattern the http.ServeMux matched for each request
	// (http.Request.Pattern), such as "/chat".
	Name string
	// Observer, when set, is told what happens on the route (see
	// Observer): connections opened and closed, messages, overflows,
	// resumes, refusals, handler errors. Nil reports nothing.
	Observer Observer
	// Logger receives the route's log lines. Nil means slog.Default().
	Logger *slog.Logger
	// QuietClose turns off the Info line logged when a connection ends
	// (with its close code, transport, duration and bytes).
	QuietClose bool
	// Clock drives every timer of the route and its transports: Conn.Every,
	// keepalive pings and comments, long-poll holds, resume windows and
	// session expiry. Nil means the real clock; tests pass a fake one
	// (realtimetest.Clock). Socket deadlines (WriteTimeout, handshakes)
	// stay on the real clock.
	Clock Clock
}

// Defaults.
const (
	DefaultReadLimit         = 64 << 10
	DefaultSendQueue         = 256
	DefaultSendQueueBytes    = 4 << 20
	DefaultPingInterval      = 25 * time.Second
	DefaultPongTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultResumeWindow      = 30 * time.Second
	DefaultInbox             = 64
	DefaultInboxBytes        = 1 << 20
	DefaultMaxConns          = 20000
	DefaultMaxConnsPerClient = 100
	DefaultReadTimeout       = 10 * time.Second
)

// resolved returns a copy of o with every default filled in.
func (o *Options) resolved() Options {
	var r Options
	if o != nil {
		r = *o
	}
	r.Transports = append([]Transport(nil), r.Transports...) // presets share theirs
	r.AllowedOrigins = append([]string(nil), r.AllowedOrigins...)
	if r.ReadLimit == 0 {
		r.ReadLimit = DefaultReadLimit
	}
	if r.SendQueue <= 0 {
		r.SendQueue = DefaultSendQueue
	}
	if r.SendQueueBytes <= 0 {
		r.SendQueueBytes = DefaultSendQueueBytes
	}
	if r.Inbox <= 0 {
		r.Inbox = DefaultInbox
	}
	if r.InboxBytes <= 0 {
		r.InboxBytes = max(DefaultInboxBytes, int(min(r.ReadLimit, 1<<40)))
	}
	if r.PingInterval == 0 {
		r.PingInterval = DefaultPingInterval
	}
	if r.PongTimeout <= 0 {
		r.PongTimeout = DefaultPongTimeout
	}
	if r.WriteTimeout <= 0 {
		r.WriteTimeout = DefaultWriteTimeout
	}
	if r.ResumeBuffer <= 0 {
		r.ResumeBuffer = r.SendQueue
	}
	if r.ResumeWindow <= 0 {
		r.ResumeWindow = DefaultResumeWindow
	}
	if r.MaxConns == 0 {
		r.MaxConns = DefaultMaxConns
	}
	if r.MaxConnsPerClient == 0 {
		r.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if r.ReadTimeout <= 0 {
		r.ReadTimeout = DefaultReadTimeout
	}
	r.TrustedProxies = append([]netip.Prefix(nil), r.TrustedProxies...)
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Clock == nil {
		r.Clock = realClock{}
	}
	return r
}
