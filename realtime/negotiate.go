package realtime

import (
	"encoding/json"
	"net/http"
)

// Describer is implemented by transport handlers that can tell a client how
// to reach them; the route's negotiation response lists what they say.
type Describer interface {
	Describe(r *http.Request) TransportInfo
}

// TransportInfo tells a client how to use one transport of a route.
type TransportInfo struct {
	Transport Kind `json:"transport"`
	// URL is relative to the negotiation request's URL. WebSocket clients
	// switch its scheme to ws or wss.
	URL string `json:"url"`
}

// Negotiation is the JSON answer to a plain GET of a route: the transports
// it allows in the order the route prefers them, and the limits a client
// must respect. See transports/PROTOCOL.md.
type Negotiation struct {
	Transports []TransportInfo `json:"transports"`
	// PingInterval is how often the server pings or sends keepalives, in
	// milliseconds; a client that hears nothing for longer than
	// PingInterval+PongTimeout should reconnect.
	PingInterval int64 `json:"pingInterval"`
	PongTimeout  int64 `json:"pongTimeout"`
	// ReadLimit is the largest message the server accepts, in bytes.
	ReadLimit int64 `json:"readLimit"`
	// ResumeWindow is how long a session waits for a reconnect, in
	// milliseconds.
	ResumeWindow int64 `json:"resumeWindow"`
}

// Negotiation returns what the route tells a client that asks, for r.
func (rt *Route) Negotiation(r *http.Request) Negotiation {
	n := Negotiation{
		Transports:   []TransportInfo{},
		PingInterval: rt.opts.PingInterval.Milliseconds(),
		PongTimeout:  rt.opts.PongTimeout.Milliseconds(),
		ReadLimit:    rt.opts.ReadLimit,
		ResumeWindow: rt.opts.ResumeWindow.Milliseconds(),
	}
	for _, th := range rt.handlers {
		if d, ok := th.(Describer); ok {
			n.Transports = append(n.Transports, d.Describe(r))
		}
	}
	return n
}

func (rt *Route) negotiate(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(rt.Negotiation(r))
}
