// Package protocol holds what the core, the plug-in API (package wire) and
// the Go client share about the wire protocol (transports/PROTOCOL.md)
// and that users never need: the negotiation answer, the rules for close
// codes, and the errors of session requests.
package protocol

import "errors"

// Negotiation is the JSON answer to a plain GET of a route: the transports
// it allows in the order the route prefers them, and the limits a client
// must respect.
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

// TransportInfo tells a client how to use one transport of a route.
type TransportInfo struct {
	Transport string `json:"transport"`
	// URL is relative to the negotiation request's URL. WebSocket clients
	// switch its scheme to ws or wss.
	URL string `json:"url"`
}

// Close codes the rules below name.
const (
	closeNoStatus = 1005
	closeAbnormal = 1006
)

// ValidCloseCode reports whether code may be sent in a close frame or a
// close request (RFC 6455 section 7.4).
func ValidCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != closeNoStatus && code != closeAbnormal
	}
	return false
}

// MaxReasonLen is the room for a reason in a close frame's 125-byte
// payload.
const MaxReasonLen = 123

// TruncReason shortens r to fit in a close frame without splitting a UTF-8
// sequence.
func TruncReason(r string) string {
	if len(r) <= MaxReasonLen {
		return r
	}
	i := MaxReasonLen
	for i > 0 && r[i]&0xC0 == 0x80 {
		i--
	}
	return r[:i]
}

// Session errors, which transports answer with a status.
var (
	// ErrUnknownSession is returned for a session token that no live
	// session of the route holds, or that is bound to another origin or
	// identity: 404.
	ErrUnknownSession = errors.New("realtime: unknown or expired session")
	// ErrConflict is returned when attaching to a session that already has
	// an exclusive attachment (a second concurrent long-poll): 409.
	ErrConflict = errors.New("realtime: session already attached")
	// ErrSuperseded ends an attachment replaced by a newer one, such as an
	// SSE stream resumed on a fresh request.
	ErrSuperseded = errors.New("realtime: attachment superseded")
)
