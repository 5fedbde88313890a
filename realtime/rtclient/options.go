package rtclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// State is where a Conn is in its life.
type State int

const (
	// Connecting: Dial is trying the transports.
	Connecting State = iota
	// Open: a transport is up and messages flow.
	Open
	// Reconnecting: the transport was lost; the client is trying again.
	// Send queues meanwhile.
	Reconnecting
	// Closed: for good. Receive returns the *realtime.CloseError.
	Closed
)

// String names the state.
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "invalid"
}

// Defaults of Options: the table "Timeouts and defaults" of
// transports/PROTOCOL.md, which the browser client shares.
const (
	// DefaultUpgradeTimeout bounds the WebSocket handshake (and the
	// negotiation GET and the long-poll open). A handshake over a real
	// network takes a few round trips, well under a second even on a
	// mobile link; a proxy that swallows the upgrade never answers at all.
	// Three seconds is long enough to not give up on a slow but working
	// network and short enough that a blocked WebSocket costs a user a
	// noticeable but tolerable delay once, at connect.
	DefaultUpgradeTimeout = 3 * time.Second
	// DefaultFirstEventTimeout bounds the wait for an SSE stream's first
	// event, which the server writes and flushes at once. A buffering proxy
	// holds it until its buffer fills or the response ends, which never
	// happens on a quiet stream. Three seconds, for the same reasons as
	// DefaultUpgradeTimeout.
	DefaultFirstEventTimeout = 3 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the reconnect delay:
	// attempt n (from 0) waits a random time in the upper half of
	// min(Max, Min·2ⁿ) ("equal jitter"), so that the clients of a
	// restarted server do not all come back at once, and none comes back
	// at once either. The first reconnect waits 250 to 500 ms; the cap of
	// 10 s keeps a user whose network came back from waiting long.
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	// DefaultSendQueue is how many messages Send queues while the
	// connection is reconnecting, as many as the server queues by default.
	DefaultSendQueue = 256
	// DefaultMaxEventSize bounds one SSE event: a message of 6 MiB in
	// base64.
	DefaultMaxEventSize = 8 << 20
	// DefaultRequestTimeout bounds a POST or DELETE. The server answers a
	// POST as soon as the message is in the handler's inbox, so a POST
	// that takes longer is stuck on a broken path: it is sent again with
	// the same seq, which the server delivers once.
	DefaultRequestTimeout = 10 * time.Second
	// closeTimeout bounds the close handshake in Close.
	closeTimeout = 2 * time.Second
	// writeTimeout bounds a WebSocket write.
	writeTimeout = 10 * time.Second
)

// Options configure a Conn. A nil *Options, and every zero field, means
// the default the field's comment states.
type Options struct {
	// Transports are those the client may use. Nil means WebSocket, SSE
	// and LongPoll. They are tried in the order the route's negotiation
	// lists them (the Dashboard preset lists SSE first), skipping those it
	// does not list; without a negotiation answer, in this order.
	Transports []realtime.Kind
	// Header is sent on every request, the WebSocket handshake included.
	Header http.Header
	// Token is a bearer credential: it is sent as "Authorization: Bearer"
	// on every request, the WebSocket handshake included, never in the URL.
	Token string
	// HTTPClient makes the requests. Nil means a client of its own, whose
	// idle connections close with the Conn. Its Timeout must be zero, as
	// streams and polls are long; the WebSocket dialer takes the proxy, TLS
	// configuration and dial function of its *http.Transport, and its Jar.
	HTTPClient *http.Client

	// UpgradeTimeout bounds the WebSocket handshake, the negotiation GET
	// and the long-poll open. Zero means DefaultUpgradeTimeout.
	UpgradeTimeout time.Duration
	// FirstEventTimeout is how long an SSE stream has to show its first
	// event before the client considers it buffered and falls back. Zero
	// means DefaultFirstEventTimeout.
	FirstEventTimeout time.Duration
	// RequestTimeout bounds each POST and DELETE. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxEventSize bounds one SSE event in bytes; a larger one closes the
	// connection with 1009 (realtime.CloseTooBig). Zero means
	// DefaultMaxEventSize.
	MaxEventSize int

	// MinBackoff and MaxBackoff bound the delay between reconnect attempts
	// (exponential with equal jitter). Zero means DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetries is how many reconnect attempts in a row may fail before
	// the connection closes for good with realtime.CloseAbnormal. Zero
	// means no limit: a realtime client is expected to outlive server
	// restarts and network outages, and the backoff keeps the attempts
	// cheap. Negative means never reconnect.
	MaxRetries int
	// Reconnect decides whether a close the server sent is followed by a
	// reconnect. Nil means DefaultReconnect.
	Reconnect func(*realtime.CloseError) bool
	// SendQueue bounds the messages queued while reconnecting; beyond it
	// Send returns ErrSendQueueFull. Zero means DefaultSendQueue.
	SendQueue int
	// NoNegotiate skips the negotiation GET: one round trip less, but the
	// client then assumes the default ping interval and pong timeout
	// (25 s + 10 s) and tries every transport in Transports.
	NoNegotiate bool

	// OnState, when set, is called on every change of state with the
	// transport and, for Reconnecting and Closed, the cause. Calls do not
	// overlap; they come from the connection's goroutine, which waits for
	// them: OnState must not block or call Close.
	OnState func(s State, transport realtime.Kind, err error)
	// Logger receives debug lines about attempts and reconnects. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// DefaultReconnect reconnects after the close codes that say the server or
// the path to it went away rather than refused the client: 1001 going
// away (server shutdown), 1006 abnormal (a dropped connection), 1012
// service restart, 1013 try again later, 1014 bad gateway. Every other
// code is final: 1000, 1008 (policy), 1009 (too big), 1011 (handler error:
// a reconnect would most likely fail the same way, in a loop) and the
// application's 3000–4999 among them. It is the table "What ends, what
// reconnects" of transports/PROTOCOL.md, which rtkit.js follows too.
func DefaultReconnect(ce *realtime.CloseError) bool {
	switch ce.Code {
	case realtime.CloseGoingAway, realtime.CloseAbnormal, 1012, realtime.CloseTryAgainLater, 1014:
		return true
	}
	return false
}

func (o *Options) resolved() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if len(r.Transports) == 0 {
		r.Transports = []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	}
	r.Transports = append([]realtime.Kind(nil), r.Transports...)
	r.Header = r.Header.Clone()
	if r.UpgradeTimeout <= 0 {
		r.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if r.FirstEventTimeout <= 0 {
		r.FirstEventTimeout = DefaultFirstEventTimeout
	}
	if r.RequestTimeout <= 0 {
		r.RequestTimeout = DefaultRequestTimeout
	}
	if r.MaxEventSize <= 0 {
		r.MaxEventSize = DefaultMaxEventSize
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = r.MinBackoff
	}
	if r.Reconnect == nil {
		r.Reconnect = DefaultReconnect
	}
	if r.SendQueue <= 0 {
		r.SendQueue = DefaultSendQueue
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// Errors that callers branch on.
var (
	// ErrGap is matched (errors.Is) by the *GapError that Receive returns
	// when messages from the server were or may have been lost.
	ErrGap = errors.New("rtclient: messages lost")
	// ErrSendQueueFull is returned by Send when the queue of messages
	// waiting for a reconnect is full.
	ErrSendQueueFull = errors.New("rtclient: send queue full")
	// ErrKeepalive is the cause of a reconnect when nothing was heard from
	// the server for its ping interval plus pong timeout.
	ErrKeepalive = errors.New("rtclient: nothing heard from the server in time")
	// ErrBuffered is why an SSE attempt failed when its first event did not
	// arrive within Options.FirstEventTimeout.
	ErrBuffered = errors.New("rtclient: event stream buffered (no first event in time)")
	// ErrTooLarge is returned by Send for a message over the route's read
	// limit, which the server would answer by closing with 1009. A
	// *RefusedError with status 413 matches it too.
	ErrTooLarge = errors.New("rtclient: message exceeds the route's read limit")
	// ErrRefused is matched (errors.Is) by the *RefusedError of a message
	// the server refused for good.
	ErrRefused = errors.New("rtclient: message refused")
)

// RefusedError reports a message the server refused for good: its POST
// was answered with a 4xx status other than 404 and 429 (400 malformed,
// 401 or 403 credentials, 409, 413 too large). The message is not sent
// again; the connection goes on. Send returns it when it waited for the
// answer; a message that was queued (Send had returned nil) is reported by
// Receive instead.
type RefusedError struct {
	StatusCode int
	Message    realtime.Message
	Body       string // the start of the answer's body, for logs
}

// Error implements error.
func (e *RefusedError) Error() string {
	s := fmt.Sprintf("rtclient: message refused: HTTP %d", e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Is makes errors.Is(err, ErrRefused) true, and errors.Is(err, ErrTooLarge)
// for status 413.
func (e *RefusedError) Is(target error) bool {
	return target == ErrRefused || (target == ErrTooLarge && e.StatusCode == http.StatusRequestEntityTooLarge)
}

// GapError is returned by Receive when messages may be missing before the
// next one. The connection goes on.
type GapError struct {
	// After is the sequence number after which messages were lost, when
	// the server said so (SSE or long-polling resumed too late).
	After uint64
	// NewConnection is set when the client is on a new server connection:
	// a WebSocket reconnect, or a session the server no longer had. What
	// the server sent in between is lost, and per-connection state on the
	// server (subscriptions) starts afresh.
	NewConnection bool
	// Reason says what happened, for logs.
	Reason string
}

// Error implements error.
func (e *GapError) Error() string {
	if e.NewConnection {
		return "rtclient: new server connection, messages may be lost: " + e.Reason
	}
	return fmt.Sprintf("rtclient: messages after %d lost", e.After)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// StatusError is an HTTP answer the client could not use.
type StatusError struct {
	StatusCode int
	Body       string // the start of the body, for logs
}

// Error implements error.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("rtclient: HTTP %d", e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}
