package realtime

import (
	"encoding/json"
	"net/http"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// negotiation returns what the route tells a client that asks, for r:
// the transports it allows in the order it prefers them, and its limits
// (see transports/PROTOCOL.md).
func (rt *Route) negotiation(r *http.Request) protocol.Negotiation {
	n := protocol.Negotiation{
		Transports:   []protocol.TransportInfo{},
		PingInterval: rt.opts.PingInterval.Milliseconds(),
		PongTimeout:  rt.opts.PongTimeout.Milliseconds(),
		ReadLimit:    rt.opts.ReadLimit,
		ResumeWindow: rt.opts.ResumeWindow.Milliseconds(),
	}
	for i, th := range rt.handlers {
		if d, ok := th.(describer); ok {
			n.Transports = append(n.Transports, protocol.TransportInfo{Transport: string(rt.opts.Transports[i].Kind()), URL: d.Describe(r)})
		}
	}
	return n
}

func (rt *Route) negotiate(w http.ResponseWriter, r *http.Request) {
	rt.observe(Event{Kind: EventNegotiate, Route: rt.nameOf(r)})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(rt.negotiation(r))
}
