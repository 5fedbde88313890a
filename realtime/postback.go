package realtime

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// Names on the wire (see transports/PROTOCOL.md).
const (
	// Subprotocol is the WebSocket subprotocol rtkit's clients offer, and
	// that the WebSocket transport accepts, besides any of
	// websocket.Options.Subprotocols.
	Subprotocol = "rtkit"
	// HeaderToken carries a session's secret token on POSTs, DELETEs and
	// long-polls. It is a header, not a query parameter, so that it stays
	// out of access logs.
	HeaderToken = "Realtime-Token"
	// HeaderSeq numbers the messages a client POSTs, from 1, so that the
	// handler receives them once and in order whatever the network does.
	HeaderSeq = "Realtime-Seq"
)

// serveSession answers a request that names a session by its token: POST
// delivers one message to the handler, DELETE closes the connection.
func (rt *Route) serveSession(w http.ResponseWriter, r *http.Request, token string) {
	s, err := rt.session(r, token)
	if err != nil {
		WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	switch r.Method {
	case http.MethodPost:
		rt.servePost(w, r, s)
	case http.MethodDelete:
		rt.serveDelete(w, r, s)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		WriteError(w, http.StatusMethodNotAllowed, "realtime: method not allowed")
	}
}

// servePost accepts the request body as one message into the handler's
// inbox and answers at once, without waiting for the handler: 204 when it
// was accepted (or was a duplicate), 429 with Retry-After when the inbox
// is full. A body over the read limit closes the connection with
// CloseTooBig, as on WebSocket.
func (rt *Route) servePost(w http.ResponseWriter, r *http.Request, s *session) {
	var seq uint64
	if v := r.Header.Get(HeaderSeq); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			WriteError(w, http.StatusBadRequest, "realtime: "+HeaderSeq+" must be a positive integer")
			return
		}
		seq = n
	}
	m, err := rt.readMessage(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, ErrReadLimit.Error())
			s.c.close(&CloseError{Code: CloseTooBig, Reason: "message too big", Err: ErrReadLimit}, true)
			return
		}
		WriteError(w, http.StatusBadRequest, "realtime: reading the message: "+err.Error())
		return
	}
	if s.c.Cause() != nil {
		WriteError(w, http.StatusNotFound, protocol.ErrUnknownSession.Error())
		return
	}
	switch err := s.post(seq, m); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errInboxFull):
		// The handler is behind: nothing was accepted, the same seq is
		// welcome again shortly.
		s.c.observe(Event{Kind: EventInboxFull})
		w.Header().Set("Retry-After", "1")
		WriteError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrClosed):
		WriteError(w, http.StatusNotFound, protocol.ErrUnknownSession.Error())
	default:
		WriteError(w, http.StatusConflict, err.Error())
	}
}

// errInvalidUTF8 refuses a text message that is not UTF-8 (RFC 6455 asks
// the same of WebSocket text frames).
var errInvalidUTF8 = errors.New("realtime: a text message must be valid UTF-8")

// readMessage reads a message from r's body (see wire.Endpoint.ReadMessage):
// binary when the Content-Type is application/octet-stream, text (which
// must be UTF-8) otherwise, of at most Options.ReadLimit bytes, within
// Options.ReadTimeout.
func (rt *Route) readMessage(w http.ResponseWriter, r *http.Request) (Message, error) {
	data, err := rt.readBody(w, r, rt.opts.ReadLimit)
	if err != nil {
		return Message{}, err
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/octet-stream") {
		return Message{Type: BinaryMessage, Data: data}, nil
	}
	if !utf8.Valid(data) {
		return Message{}, errInvalidUTF8
	}
	return Message{Type: TextMessage, Data: data}, nil
}

// readBody reads r's body, of at most limit bytes (more is an
// *http.MaxBytesError), within Options.ReadTimeout: a client that
// trickles a body does not hold the request.
func (rt *Route) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(rt.opts.ReadTimeout)) == nil
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		// What is left of the body will not be read: end the connection
		// after the answer instead of waiting for the rest.
		w.Header().Set("Connection", "close")
	} else if deadline {
		rc.SetReadDeadline(time.Time{}) // the connection may serve more requests
	}
	return data, err
}

// serveDelete closes the connection from the client's side and answers at
// once. The body may carry {"code": 1000, "reason": "..."}; the default is
// CloseNormal.
func (rt *Route) serveDelete(w http.ResponseWriter, r *http.Request, s *session) {
	var req struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}
	body, err := rt.readBody(w, r, 1024)
	if err != nil || len(body) > 0 && json.Unmarshal(body, &req) != nil {
		WriteError(w, http.StatusBadRequest, "realtime: malformed close request")
		return
	}
	if req.Code == 0 {
		req.Code = CloseNormal
	}
	if !protocol.ValidCloseCode(req.Code) {
		WriteError(w, http.StatusBadRequest, "realtime: invalid close code")
		return
	}
	// The context is cancelled at once; the handler's Close runs when the
	// callback in progress, if any, has returned, without holding up the
	// client.
	if s.c.end(&CloseError{Code: req.Code, Reason: protocol.TruncReason(req.Reason)}) {
		go s.c.complete()
	}
	w.WriteHeader(http.StatusNoContent)
}
