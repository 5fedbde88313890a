package realtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// Relay is implemented by brokers that carry requests between nodes. A
// route with Options.Relay set forwards an SSE POST-back, DELETE or
// long-poll that reaches a node which does not hold its session to the
// node that does, so a cluster needs no sticky sessions.
type Relay interface {
	// ServeNode answers the requests addressed to node with h until ctx
	// ends. It returns once requests can reach h; h runs on goroutines of
	// the relay's, one per request, and its context ends with ctx or when
	// the requester gives up.
	ServeNode(ctx context.Context, node string, h func(ctx context.Context, req []byte) []byte) error
	// Request sends req to node and returns its answer, or an error when
	// no node answers before ctx ends (ErrUnknownNode when the relay knows
	// that nobody serves node).
	Request(ctx context.Context, node string, req []byte) ([]byte, error)
}

// nodeIDLen is the length of the node prefix of session tokens.
const nodeIDLen = 8

// newNodeID returns a route's node id: random base32, so that the tokens
// of routes on different nodes (or different routes of one process) never
// claim each other's sessions.
func newNodeID() string { return rand.Text()[:nodeIDLen] }

// owns reports whether token names a session of this route.
func (rt *Route) owns(token string) bool {
	return len(token) > nodeIDLen && token[:nodeIDLen] == rt.node
}

// relayed is a request carried to another node.
type relayed struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body,omitempty"`
	// Identity is what Options.Identity said on the forwarding node, after
	// its middleware ran; the owning node checks the session against it.
	Identity string `json:"identity,omitempty"`
	// Scheme is the scheme the client used, as the forwarding node saw it
	// (TLS, or a trusted proxy's word), for the origin check.
	Scheme string `json:"scheme"`
}

// relayedScheme is the context key of a relayed request's scheme.
type relayedScheme struct{}

// relayedIdentity is the context key of a relayed request's identity.
type relayedIdentity struct{}

// identityOf returns the identity of r for session checks.
func (rt *Route) identityOf(r *http.Request) string {
	if id, ok := r.Context().Value(relayedIdentity{}).(string); ok {
		return id
	}
	if f := rt.opts.Identity; f != nil {
		return f(r)
	}
	return ""
}

// relayedResponse is its answer.
type relayedResponse struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body,omitempty"`
}

// relayMargin is how much longer than a long-poll's hold a forwarded
// request may take.
const relayMargin = 10 * time.Second

// forward hands r to the node that holds token's session and writes its
// answer.
func (rt *Route) forward(w http.ResponseWriter, r *http.Request, token string) {
	body, err := rt.readBody(w, r, rt.opts.ReadLimit)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		WriteError(w, http.StatusRequestEntityTooLarge, ErrReadLimit.Error())
		return
	}
	if err != nil {
		WriteError(w, http.StatusBadRequest, "realtime: reading the request: "+err.Error())
		return
	}
	scheme, host := rt.target(r)
	req, _ := json.Marshal(relayed{Method: r.Method, URL: r.URL.RequestURI(), Host: host, Header: r.Header, Body: body, Identity: rt.identityOf(r), Scheme: scheme})
	ctx, cancel := context.WithTimeout(r.Context(), max(rt.opts.PingInterval, 0)+relayMargin)
	defer cancel()
	start := time.Now()
	out, err := rt.opts.Relay.Request(ctx, nodeSubject(token[:nodeIDLen]), req)
	rt.observe(Event{Kind: EventRelay, Route: rt.nameOf(r), Duration: time.Since(start), Err: err})
	if err != nil {
		if errors.Is(err, ErrUnknownNode) {
			WriteError(w, http.StatusNotFound, protocol.ErrUnknownSession.Error())
			return
		}
		rt.opts.Logger.Warn("realtime: relaying a request failed", "err", err)
		WriteError(w, http.StatusBadGateway, "realtime: the node holding the session did not answer")
		return
	}
	var resp relayedResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		WriteError(w, http.StatusBadGateway, "realtime: malformed relay answer")
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

// nodeSubject is the relay address of a node's route.
func nodeSubject(node string) string { return "node-" + strings.ToLower(node) }

// serveRelay answers requests that other nodes forward to this route.
func (rt *Route) serveRelay() {
	ctx, cancel := context.WithCancel(context.Background())
	rt.stopNode = cancel
	err := rt.opts.Relay.ServeNode(ctx, nodeSubject(rt.node), func(ctx context.Context, req []byte) []byte {
		var in relayed
		if err := json.Unmarshal(req, &in); err != nil {
			return mustJSON(relayedResponse{Status: http.StatusBadRequest})
		}
		ctx = context.WithValue(ctx, relayedIdentity{}, in.Identity)
		ctx = context.WithValue(ctx, relayedScheme{}, in.Scheme)
		r, err := http.NewRequestWithContext(ctx, in.Method, in.URL, bytes.NewReader(in.Body))
		if err != nil {
			return mustJSON(relayedResponse{Status: http.StatusBadRequest})
		}
		r.Host, r.Header, r.RemoteAddr = in.Host, in.Header, "relay"
		if in.Method == methodRead {
			if !rt.originAllowed(r) {
				return mustJSON(relayedBatch{Status: http.StatusForbidden})
			}
			return mustJSON(rt.serveRead(r))
		}
		rec := &recorder{header: http.Header{}}
		rt.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		return mustJSON(relayedResponse{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
	})
	if err != nil {
		rt.opts.Logger.Error("realtime: serving relayed requests failed; this node cannot be reached by others", "err", err)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// recorder is the ResponseWriter of a relayed request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
