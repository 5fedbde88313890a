package realtime

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// bearerPrefix starts the subprotocol entry that carries a bearer token
// in a browser's WebSocket handshake: "rtkit.bearer." + base64url(token).
const bearerPrefix = "rtkit.bearer."

// BearerToken returns the credential a client presented without putting it
// in the URL (where logs keep it): the "Authorization: Bearer" header,
// which rtkit's clients send on every HTTP request (SSE over fetch,
// long-polling, POSTs), or, for a browser's WebSocket handshake, which
// cannot carry headers, a Sec-WebSocket-Protocol entry
// "rtkit.bearer.<base64url token>" offered next to "rtkit", as Phoenix does.
// It returns "" when there is none. Auth middleware calls it before the
// upgrade:
//
//	func auth(next http.Handler) http.Handler {
//		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			user, ok := verify(realtime.BearerToken(r))
//			if !ok {
//				http.Error(w, "unauthorized", http.StatusUnauthorized)
//				return
//			}
//			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, user)))
//		})
//	}
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			p = strings.TrimSpace(p)
			if enc, ok := strings.CutPrefix(p, bearerPrefix); ok {
				if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
					return string(b)
				}
			}
		}
	}
	return ""
}

// BearerSubprotocol returns the Sec-WebSocket-Protocol entry that carries
// token, for clients: offer it together with Subprotocol.
func BearerSubprotocol(token string) string {
	return bearerPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))
}
