package realtime

import (
	"net/http"
)

// Endpoint is what a route gives a transport: the way to admit connections
// and the route's resolved options. Only transport packages use it.
type Endpoint struct {
	route *Route
	kind  Kind
}

// Kind is the transport this endpoint serves.
func (ep *Endpoint) Kind() Kind { return ep.kind }

// Options returns the route's options with every default filled in. The
// result must not be modified.
func (ep *Endpoint) Options() *Options { return &ep.route.opts }

// Accept admits a new connection for request r and reserves its place under
// Options.MaxConns. It returns ErrTooManyConns or ErrServerClosed when the
// route cannot take it; the transport then answers 503 without upgrading.
//
// The transport then either calls Link.Abort (the handshake failed: no
// handler callback runs) or Link.Open, runs its read loop calling
// Link.Receive, and finally calls Link.Closed.
func (ep *Endpoint) Accept(r *http.Request) (*Link, error) {
	c, err := ep.route.admit(r, ep.kind)
	if err != nil {
		return nil, err
	}
	return &Link{c: c}, nil
}

// Resume returns the connection of the session that token names, if r may
// act on it (same origin and identity as the request that opened it), or
// ErrUnknownSession. The transport then attaches to it with Link.Attach.
func (ep *Endpoint) Resume(r *http.Request, token string) (*Link, error) {
	s, err := ep.route.session(r, token)
	if err != nil {
		return nil, err
	}
	return &Link{c: s.c}, nil
}

// Link is the transport's handle on one connection.
type Link struct {
	c *Conn
}

// Conn returns the connection.
func (l *Link) Conn() *Conn { return l.c }

// Abort gives back a connection that never opened.
func (l *Link) Abort() { l.c.abort() }

// Open binds the wire and runs the handler's Open on the calling
// goroutine, for wires the core does not read (request/response, the
// in-memory pipe): the transport then calls Receive for each message and
// Closed when the wire ends. If Open fails the core starts closing the
// connection.
func (l *Link) Open(w Wire) { l.c.open(w) }

// Start binds a wire the core reads and runs the connection on goroutines
// of the core's: Open, then a read loop that hands each message to the
// handler, and the end of the connection when Read fails. Start returns at
// once; the transport calls neither Receive nor Closed. The core reads on
// while a callback is slow, queueing messages in the connection's inbox
// and stopping when it is full.
func (l *Link) Start(r Reader) { l.c.start(r) }

// OpenSession opens a connection whose transport is made of requests
// (SSE, long-polling): the core keeps a session with a secret token bound
// to r's origin and identity and a backlog of sent messages, serves the
// client's POSTed messages and DELETE, and is the connection's Wire. The
// handler's Open runs on a goroutine of the core's, so the transport can
// answer r at once. The transport reads the backlog through Attach and
// never calls Receive or Closed. OpenSession returns the token, which the
// transport gives the client once, in the response to r, and never logs.
func (l *Link) OpenSession(r *http.Request) string {
	s := newSession(l.c, r)
	c := l.c
	c.sess = s
	rt := l.c.route
	rt.mu.Lock()
	rt.sessions[s.token] = s
	rt.mu.Unlock()
	// Until a transport attaches, the session is as good as dropped: a
	// client that opens a long-poll session and never polls must not hold
	// it forever.
	s.mu.Lock()
	s.grace = c.opts.Clock.AfterFunc(c.opts.ResumeWindow, s.detachedTimeout)
	s.mu.Unlock()
	c.startSession(s)
	return s.token
}

// Receive hands a message from the peer to the handler and returns when
// the handler has processed it (or the connection closed first), for
// wires opened with Open. Messages that arrive after the connection began
// closing are discarded.
func (l *Link) Receive(m Message) { l.c.receiveSync(m) }

// Closed reports that the wire ended, with err as the cause when the core
// did not start the close itself (a *CloseError from the peer, or a network
// error), for wires opened with Open. It cancels the connection's context
// at once, closes the wire, stops the connection's timers and goroutines,
// runs the handler's Close exactly once and returns when all of that is
// done.
func (l *Link) Closed(err error) { l.c.finish(err) }
