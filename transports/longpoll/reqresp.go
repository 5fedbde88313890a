package longpoll

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

var timeNow = time.Now

// RequestResponse is the one-shot transport: one POST runs Open, Message
// and Close, and the response carries what the handler sent. List it in
// realtime.Options.Transports; one value may serve many routes.
type RequestResponse struct{}

// NewRequestResponse returns the request/response transport.
func NewRequestResponse() *RequestResponse { return &RequestResponse{} }

var _ realtime.Transport = (*RequestResponse)(nil)

// Kind returns realtime.HTTP.
func (*RequestResponse) Kind() realtime.Kind { return realtime.HTTP }

// Bind returns the request/response server for route rt.
func (*RequestResponse) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
	ep := wire.NewEndpoint(rt, realtime.HTTP)
	return &oneShot{ep: ep, opts: ep.Options()}, nil
}

type oneShot struct {
	ep   *wire.Endpoint
	opts *realtime.Options
}

var (
	_ realtime.TransportHandler = (*oneShot)(nil)
	_ wire.Describer            = (*oneShot)(nil)
)

// Match takes POSTs that name no other transport. (POSTs with a session
// token never reach it: the route serves them.)
func (o *oneShot) Match(r *http.Request) bool {
	t := r.URL.Query().Get("transport")
	return r.Method == http.MethodPost && (t == "" || t == "http")
}

// Describe tells negotiating clients where to POST.
func (o *oneShot) Describe(r *http.Request) string { return r.URL.Path }

// ServeHTTP runs the handler once over the request.
func (o *oneShot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, err := o.ep.ReadMessage(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			realtime.WriteError(w, http.StatusRequestEntityTooLarge, realtime.ErrReadLimit.Error())
		} else {
			realtime.WriteError(w, http.StatusBadRequest, "longpoll: reading the message: "+err.Error())
		}
		return
	}
	link, err := o.ep.Accept(r)
	if err != nil {
		wire.Refuse(w, err)
		return
	}
	// A client that gives up ends the connection at once: its context is
	// cancelled, so the handler's slow work stops.
	stop := context.AfterFunc(r.Context(), func() {
		link.Closed(&realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "connection lost", Err: context.Cause(r.Context())})
	})
	col := &collector{}
	link.Open(col)
	link.Receive(m)
	if !stop() {
		return // the client has gone: nobody reads the answer
	}
	link.Closed(nil)

	msgs := col.messages()
	if code := realtime.CloseStatus(link.Conn().Cause()); code != realtime.CloseNormal && code != realtime.CloseGoingAway {
		status := http.StatusBadRequest
		switch code {
		case realtime.CloseInternalError:
			status = http.StatusInternalServerError
		case realtime.CloseTooBig:
			status = http.StatusRequestEntityTooLarge
		}
		writeClose(w, status, link.Conn().Cause())
		return
	}
	switch {
	case len(msgs) == 0:
		w.WriteHeader(http.StatusNoContent)
	case len(msgs) == 1 && !strings.Contains(r.Header.Get("Accept"), "application/json"):
		ct := "text/plain; charset=utf-8"
		if msgs[0].Type == realtime.BinaryMessage {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Write(msgs[0].Data)
	default:
		out := make([]Message, len(msgs))
		for i, m := range msgs {
			out[i] = encode(0, m)
		}
		writeJSON(w, out)
	}
}

// writeClose answers a request whose handler closed the connection with an
// error: {"error": reason, "code": code}.
func writeClose(w http.ResponseWriter, status int, err error) {
	var ce *realtime.CloseError
	errors.As(err, &ce)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}{ce.Reason, ce.Code})
}

// collector is the Wire of a request/response connection: it keeps what
// the handler sends for the response.
type collector struct {
	mu   sync.Mutex
	msgs []realtime.Message
	ce   *realtime.CloseError
}

func (c *collector) Write(msgs []realtime.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ce != nil {
		return realtime.ErrClosed
	}
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *collector) Close(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ce == nil {
		c.ce = &realtime.CloseError{Code: code, Reason: reason}
	}
	return nil
}

func (c *collector) messages() []realtime.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs
}
