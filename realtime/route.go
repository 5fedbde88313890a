package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// Route serves one Handler over the transports its Options allow. It is an
// http.Handler: mount it on any router (for gin, see package rtgin).
type Route struct {
	handler  Handler
	opts     Options
	handlers []TransportHandler

	mu        sync.Mutex
	conns     map[*Conn]struct{}
	perClient map[string]int      // live connections by Conn.client
	sessions  map[string]*session // by token
	node      string              // prefix of this route's session tokens
	stopNode  context.CancelFunc  // stops serving relayed requests
	closing   bool
	idle      chan struct{} // closed when the route is closing and empty
}

var _ http.Handler = (*Route)(nil)

// NewRoute returns a route that serves h over the transports of o. The
// other fields of o have safe defaults, so a preset of package transports
// is all most routes need:
//
//	o := transports.Messaging // WebSocket, then SSE, then long-polling
//	http.Handle("/chat", realtime.NewRoute(chat, &o))
//
// NewRoute panics, as http.ServeMux.Handle does for a bad pattern, if o
// lists no transport, lists a kind twice, or a transport cannot serve the
// route: that is a programming error, found at start-up.
func NewRoute(h Handler, o *Options) *Route {
	rt := &Route{
		handler:   h,
		opts:      o.resolved(),
		conns:     make(map[*Conn]struct{}),
		perClient: make(map[string]int),
		sessions:  make(map[string]*session),
	}
	if len(rt.opts.Transports) == 0 {
		panic("realtime: NewRoute: Options.Transports is empty; use a preset of package transports, such as transports.Messaging, or list transports such as websocket.New(websocket.Options{})")
	}
	seen := map[Kind]bool{}
	for _, t := range rt.opts.Transports {
		if t == nil {
			panic("realtime: NewRoute: nil transport in Options.Transports")
		}
		k := t.Kind()
		if seen[k] {
			panic(fmt.Sprintf("realtime: NewRoute: transport %q listed twice", k))
		}
		seen[k] = true
		th, err := t.Bind(rt)
		if err == nil && th == nil {
			err = errors.New("Bind returned no handler")
		}
		if err != nil {
			panic(fmt.Sprintf("realtime: NewRoute: transport %q: %v", k, err))
		}
		rt.handlers = append(rt.handlers, th)
	}
	rt.node = newNodeID()
	if rt.opts.Relay != nil {
		rt.serveRelay()
	}
	return rt
}

// ServeHTTP checks the request's origin, answers CORS for the origins
// Options.AllowedOrigins lets in, and hands the request to the first of
// the route's transports that matches it. Refusals carry a JSON body
// {"error": "..."}: 403 for a foreign origin, 503 while shutting down or
// full, 429 for a client over its cap, 405 for a method no transport
// takes, 400 for a request no transport matches.
func (rt *Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.cors(w, r) {
		return // a preflight from an allowed origin, answered
	}
	if !rt.originAllowed(r) {
		rt.observe(Event{Kind: EventRefuse, Route: rt.nameOf(r), Code: http.StatusForbidden, Err: ErrOrigin})
		rt.opts.Logger.Debug("realtime: origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		WriteError(w, http.StatusForbidden, ErrOrigin.Error())
		return
	}
	if token := r.Header.Get(HeaderToken); token != "" {
		if rt.opts.Relay != nil && !rt.owns(token) {
			rt.forward(w, r, token)
			return
		}
		if r.Method != http.MethodGet {
			rt.serveSession(w, r, token)
			return
		}
	}
	for _, th := range rt.handlers {
		if th.Match(r) {
			th.ServeHTTP(w, r)
			return
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		rt.negotiate(w, r)
	case http.MethodPost:
		WriteError(w, http.StatusBadRequest, "realtime: no transport of this route accepts the request")
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, POST, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE, OPTIONS")
		WriteError(w, http.StatusMethodNotAllowed, "realtime: method not allowed")
	}
}

// admit reserves a place for a new connection.
func (rt *Route) admit(r *http.Request, k Kind) (*Conn, error) {
	c, err := rt.reserve(r, k)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, ErrClientLimit) {
			status = http.StatusTooManyRequests
		}
		rt.observe(Event{Kind: EventRefuse, Route: rt.nameOf(r), Transport: k, Code: status, Err: err})
	}
	return c, err
}

// reserve is admit's work, under the route's lock.
func (rt *Route) reserve(r *http.Request, k Kind) (*Conn, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closing {
		return nil, ErrServerClosed
	}
	if rt.opts.MaxConns > 0 && len(rt.conns) >= rt.opts.MaxConns {
		return nil, ErrTooManyConns
	}
	key := rt.clientKey(r)
	if rt.opts.MaxConnsPerClient > 0 && rt.perClient[key] >= rt.opts.MaxConnsPerClient {
		return nil, ErrClientLimit
	}
	c := newConn(rt, r, k)
	c.client = key
	rt.conns[c] = struct{}{}
	rt.perClient[key]++
	return c, nil
}

func (rt *Route) release(c *Conn) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if _, ok := rt.conns[c]; !ok {
		return
	}
	delete(rt.conns, c)
	if rt.perClient[c.client]--; rt.perClient[c.client] <= 0 {
		delete(rt.perClient, c.client)
	}
	if rt.closing && len(rt.conns) == 0 && rt.idle != nil {
		close(rt.idle)
		rt.idle = nil
	}
}

// session returns the live session of token that r may act on.
func (rt *Route) session(r *http.Request, token string) (*session, error) {
	rt.mu.Lock()
	s := rt.sessions[token]
	rt.mu.Unlock()
	if s == nil || !s.bound(r) {
		return nil, protocol.ErrUnknownSession
	}
	return s, nil
}

func (rt *Route) forget(token string) {
	rt.mu.Lock()
	delete(rt.sessions, token)
	rt.mu.Unlock()
}

// Len returns the number of live connections, counting those still being
// opened (as MaxConns does).
func (rt *Route) Len() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.conns)
}

// Conns returns the live connections, in no particular order: those
// whose Open has been called and whose Close has not returned. A request
// still being upgraded counts in Len (against MaxConns) but is not here.
func (rt *Route) Conns() []*Conn {
	rt.mu.Lock()
	cs := make([]*Conn, 0, len(rt.conns))
	for c := range rt.conns {
		cs = append(cs, c)
	}
	rt.mu.Unlock()
	// c.mu is never taken inside rt.mu: filter outside it.
	live := cs[:0]
	for _, c := range cs {
		c.mu.Lock()
		opened := c.state != stateNew
		c.mu.Unlock()
		if opened {
			live = append(live, c)
		}
	}
	clear(cs[len(live):])
	return live
}

// Shutdown stops admitting connections, closes every live one with
// CloseGoingAway (the cause wraps ErrServerClosed) and waits until their
// handlers' Close have returned or ctx ends, whichever comes first; in the
// latter case it returns ctx's error. Messages already in a connection's
// inbox (for SSE and long-polling, POSTs already answered) still reach
// its handler first, with the connection's context cancelled; what they
// send is not delivered.
func (rt *Route) Shutdown(ctx context.Context) error {
	return rt.wait(ctx, rt.startShutdown())
}

func (rt *Route) startShutdown() <-chan struct{} {
	rt.mu.Lock()
	rt.closing = true
	idle := make(chan struct{})
	if len(rt.conns) == 0 {
		close(idle)
	} else if rt.idle != nil {
		idle = rt.idle
	} else {
		rt.idle = idle
	}
	conns := make([]*Conn, 0, len(rt.conns))
	for c := range rt.conns {
		conns = append(conns, c)
	}
	rt.mu.Unlock()
	for _, c := range conns {
		c.close(&CloseError{Code: CloseGoingAway, Reason: "server shutting down", Err: ErrServerClosed}, true)
	}
	return idle
}

func (rt *Route) wait(ctx context.Context, idle <-chan struct{}) error {
	defer func() {
		if rt.stopNode != nil {
			rt.stopNode()
		}
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriteError writes a JSON error response {"error": msg} with the status,
// the shape of every refusal of the route and its transports. Middleware
// in front of a route (authentication, say) uses it so that clients read
// its refusals the same way.
func WriteError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
