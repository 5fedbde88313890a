package realtime

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Who a request comes from and where it was sent: the origin check, CORS
// and the per-client cap read them here. Forwarding headers count only
// when the request's peer is one of Options.TrustedProxies; anyone can
// write them.

// originAllowed applies Options.CheckOrigin, or the same-origin rule with
// Options.AllowedOrigins.
func (rt *Route) originAllowed(r *http.Request) bool {
	if rt.opts.CheckOrigin != nil {
		return rt.opts.CheckOrigin(r)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	return rt.sameOrigin(r) || rt.listed(origin)
}

// listed reports whether origin is one of Options.AllowedOrigins.
func (rt *Route) listed(origin string) bool {
	for _, a := range rt.opts.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether r's Origin is the origin r was sent to:
// scheme, host and port.
func (rt *Route) sameOrigin(r *http.Request) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || u.Host == "" {
		return false
	}
	scheme, host := rt.target(r)
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(withPort(u.Host, u.Scheme), withPort(host, scheme))
}

// target returns the scheme and host the client sent r to: TLS or not and
// the Host header, or what a trusted proxy says it received.
func (rt *Route) target(r *http.Request) (scheme, host string) {
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s, ok := r.Context().Value(relayedScheme{}).(string); ok {
		scheme = s // forwarded by another node, which already decided
	} else if rt.fromTrustedProxy(r) {
		if p := lastValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := lastValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	return scheme, host
}

// withPort adds the scheme's default port to a host that has none.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" || scheme == "wss" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// lastValue returns the last entry of a comma-separated header: the one
// the nearest proxy added.
func lastValue(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// peerAddr returns the address of r's direct peer.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		return a.Unmap(), err == nil
	}
	return ap.Addr().Unmap(), true
}

// fromTrustedProxy reports whether r's peer is one of TrustedProxies.
func (rt *Route) fromTrustedProxy(r *http.Request) bool {
	a, ok := peerAddr(r)
	return ok && rt.trusted(a)
}

func (rt *Route) trusted(a netip.Addr) bool {
	for _, p := range rt.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey names the client r comes from, for MaxConnsPerClient.
func (rt *Route) clientKey(r *http.Request) string {
	if f := rt.opts.ClientKey; f != nil {
		return f(r)
	}
	a, ok := peerAddr(r)
	if !ok {
		return r.RemoteAddr
	}
	if rt.trusted(a) {
		// The client is the nearest address that is not a trusted proxy,
		// reading X-Forwarded-For from the right.
		fwd := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(fwd) - 1; i >= 0; i-- {
			f, err := netip.ParseAddr(strings.TrimSpace(fwd[i]))
			if err != nil {
				break
			}
			a = f.Unmap()
			if !rt.trusted(a) {
				break
			}
		}
	}
	return a.String()
}

// The headers a browser may send cross-origin on this route's requests,
// and those it may read from the answers.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Last-Event-ID, " + HeaderToken + ", " + HeaderSeq + ", Realtime-Ack"
	corsAllowMethods  = "GET, POST, DELETE"
	corsExposeHeaders = "Retry-After"
	corsMaxAge        = "600"
)

// cors answers CORS for a request from an allowed foreign origin: it sets
// the response headers and reports true when r was a preflight, now
// answered. Same-origin requests need none of it; foreign origins that
// are not allowed get none of it (and a 403 from ServeHTTP).
func (rt *Route) cors(w http.ResponseWriter, r *http.Request) (preflight bool) {
	origin := r.Header.Get("Origin")
	if origin == "" || rt.opts.CheckOrigin == nil && rt.sameOrigin(r) || !rt.originAllowed(r) {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if rt.opts.CheckOrigin == nil && !rt.listedExactly(origin) {
		h.Set("Access-Control-Allow-Origin", "*") // "*" allows any origin, without credentials
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// listedExactly reports whether origin itself, not "*", is allowed.
func (rt *Route) listedExactly(origin string) bool {
	for _, a := range rt.opts.AllowedOrigins {
		if a != "*" && strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}
