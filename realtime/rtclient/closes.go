package rtclient

import (
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// serverClose is the close that an SSE close event or a poll's answer
// reports, as Receive returns it: a code outside 1000-4999 (none given, or
// nonsense from whatever answered for the server) is CloseNoStatus, and
// the reason is cut to what fits a close frame, as on WebSocket.
func serverClose(code int, reason string) *realtime.CloseError {
	if code < 1000 || code > 4999 {
		code = realtime.CloseNoStatus
	}
	return &realtime.CloseError{Code: code, Reason: protocol.TruncReason(reason)}
}
