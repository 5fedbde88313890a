package realtime

import (
	"net/http"
	"time"
)

// Observer receives what happens on a route and its connections, and on
// the topics and brokers they use, for metrics: set it as
// Options.Observer (packages rtprom and rtotel adapt it to Prometheus and
// OpenTelemetry; topics.Observe wraps a broker so that it reports too).
//
// Observe is called synchronously, from many goroutines at once, some of
// them on a connection's data path: it must be quick (count, do not log or
// block) and must not call back into the route or its connections. With
// no Observer set, nothing is reported and nothing costs.
type Observer interface {
	Observe(e Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(e Event)

var _ Observer = ObserverFunc(nil)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// EventKind says what an Event reports.
type EventKind int

// The events, with the fields each sets besides Kind and Route.
const (
	EventOpen      EventKind = iota + 1 // a connection opened: Transport, Conn
	EventClose                          // a connection ended: Transport, Conn, Code, Duration, Err (the cause)
	EventReceive                        // a message arrived from the peer: Transport, Bytes
	EventSend                           // messages were written to the peer: Transport, N, Bytes
	EventOverflow                       // the send queue was full and Policy applied: Transport, Policy, N (messages dropped)
	EventInboxFull                      // the inbox was full: the reader paused, or a POST was refused with 429: Transport
	EventCatchUp                        // a topic catch-up streamed its history: Transport, N (messages), Duration
	EventGap                            // a client was told messages were lost: Transport
	EventResume                         // a session was resumed by a new request (a stream reconnected): Transport
	EventExpire                         // a session was not resumed within ResumeWindow: Transport
	EventRefuse                         // a request was refused: Transport (if known), Code (the HTTP status: 403, 429, 503), Err
	EventNegotiate                      // a client asked which transports the route serves
	EventRelay                          // a session request was forwarded to another node: Duration, Err
	EventError                          // a handler returned an error or panicked: Transport, Err (a *PanicError for a panic)
	EventPublish                        // a broker call, reported by topics.Observe: Op, Duration, Err
)

var eventNames = [...]string{
	EventOpen: "open", EventClose: "close", EventReceive: "receive", EventSend: "send",
	EventOverflow: "overflow", EventInboxFull: "inbox_full", EventCatchUp: "catch_up",
	EventGap: "gap", EventResume: "resume", EventExpire: "expire", EventRefuse: "refuse",
	EventNegotiate: "negotiate", EventRelay: "relay", EventError: "error", EventPublish: "broker",
}

// String names the kind: "open", "close", "inbox_full", ...
func (k EventKind) String() string {
	if k > 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing an Observer is told. Its labels (Route, Transport,
// Policy, Code, Op) have few values, fit for metrics; Conn is there for
// tools that look at one connection, never as a label.
type Event struct {
	Kind EventKind
	// Route names the route: Options.Name, or the pattern the
	// http.ServeMux matched for the request (http.Request.Pattern), or "".
	Route     string
	Transport Kind
	Conn      *Conn
	// Code is the close code (EventClose) or the HTTP status (EventRefuse).
	Code     int
	Policy   OverflowPolicy
	N        int
	Bytes    int
	Duration time.Duration
	// Op is the broker call (EventPublish): "publish", "history",
	// "subscribe".
	Op  string
	Err error
}

// observe reports e through the route's Observer, if there is one.
func (rt *Route) observe(e Event) {
	if o := rt.opts.Observer; o != nil {
		o.Observe(e)
	}
}

// nameOf is the Route label of events about r.
func (rt *Route) nameOf(r *http.Request) string {
	if rt.opts.Name != "" {
		return rt.opts.Name
	}
	return r.Pattern
}

// observe reports an event about c.
func (c *Conn) observe(e Event) {
	if o := c.opts.Observer; o != nil {
		e.Route, e.Transport, e.Conn = c.name, c.kind, c
		o.Observe(e)
	}
}
