package websocket

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// refuse answers an upgrade the route cannot take. A browser's WebSocket
// cannot read the status of a failed handshake (it sees 1006 and
// nothing more), so an upgrade refused for being over a cap is accepted
// and closed at once with 1013 (try again later) and the reason; a
// shutdown, and requests that cannot be upgraded, get the plain refusal
// (503, or 429 for a client over its cap, with Retry-After).
func (s *server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, realtime.ErrTooManyConns) && !errors.Is(err, realtime.ErrClientLimit) {
		wire.Refuse(w, err)
		return
	}
	up := s.upgrader
	up.Error = func(w http.ResponseWriter, _ *http.Request, _ int, _ error) { wire.Refuse(w, err) }
	ws, uerr := up.Upgrade(w, r, nil)
	if uerr != nil {
		return // answered by up.Error
	}
	reason := "too many connections"
	if errors.Is(err, realtime.ErrClientLimit) {
		reason = "too many connections from this client"
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(realtime.CloseTryAgainLater, reason), time.Now().Add(closeFrameTimeout))
	ws.Close()
}
