package longpoll

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// HeaderAck carries the highest message sequence number a long-polling
// client has received.
const HeaderAck = "Realtime-Ack"

// Options configure the long-polling transport. The zero value is the
// default.
type Options struct {
	// Hold is how long a poll waits for messages before it answers empty.
	// Zero means the route's PingInterval (25 s by default), or 25 s when
	// the route's pings are off.
	Hold time.Duration
}

// Transport is the long-polling transport: list it in
// realtime.Options.Transports. One value may serve many routes.
type Transport struct {
	o Options
}

// New returns the long-polling transport with options o.
func New(o Options) *Transport { return &Transport{o: o} }

var _ realtime.Transport = (*Transport)(nil)

// Kind returns realtime.LongPoll.
func (t *Transport) Kind() realtime.Kind { return realtime.LongPoll }

// Bind returns the long-polling server for route rt.
func (t *Transport) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
	ep := wire.NewEndpoint(rt, realtime.LongPoll)
	o := ep.Options()
	hold := t.o.Hold
	if hold <= 0 {
		hold = o.PingInterval
	}
	if hold <= 0 {
		hold = realtime.DefaultPingInterval
	}
	return &poller{ep: ep, opts: o, hold: hold}, nil
}

type poller struct {
	ep   *wire.Endpoint
	opts *realtime.Options
	hold time.Duration
}

var (
	_ realtime.TransportHandler = (*poller)(nil)
	_ wire.Describer            = (*poller)(nil)
)

// Match takes ?transport=longpoll GETs (polls) and POSTs (opens).
func (p *poller) Match(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodPost) &&
		r.URL.Query().Get("transport") == "longpoll"
}

// Describe tells negotiating clients where to open a session.
func (p *poller) Describe(r *http.Request) string { return r.URL.Path + "?transport=longpoll" }

// ServeHTTP opens a session (POST) or serves a poll (GET).
func (p *poller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		p.open(w, r)
		return
	}
	p.poll(w, r)
}

// opened is the answer to an open.
type opened struct {
	ID        string        `json:"id"`
	Token     string        `json:"token"`
	Transport realtime.Kind `json:"transport"`
}

func (p *poller) open(w http.ResponseWriter, r *http.Request) {
	link, err := p.ep.Accept(r)
	if err != nil {
		wire.Refuse(w, err)
		return
	}
	token := link.OpenSession(r)
	writeJSON(w, opened{ID: link.Conn().ID(), Token: token, Transport: realtime.LongPoll})
}

// Poll is the answer to a poll. See the package doc.
type Poll struct {
	Messages []Message  `json:"messages"`
	Gap      *Gap       `json:"gap,omitempty"`
	Close    *CloseInfo `json:"close,omitempty"`
}

// Message is a message in a poll or request/response answer. Data is the
// text, or base64 (standard, padded) for type "binary".
type Message struct {
	Seq  uint64 `json:"seq,omitempty"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// Gap says that messages after After were lost before the first message.
type Gap struct {
	After uint64 `json:"after"`
}

// CloseInfo is the close code and reason of a closed connection.
type CloseInfo struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

func (p *poller) poll(w http.ResponseWriter, r *http.Request) {
	var ack uint64
	if v := r.Header.Get(HeaderAck); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			realtime.WriteError(w, http.StatusBadRequest, "longpoll: "+HeaderAck+" must be an integer")
			return
		}
		ack = n
	}
	link, err := p.ep.Resume(r, r.Header.Get(realtime.HeaderToken))
	if err != nil {
		realtime.WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	att, err := link.Attach(true)
	if errors.Is(err, wire.ErrConflict) {
		realtime.WriteError(w, http.StatusConflict, err.Error())
		return
	} else if err != nil {
		realtime.WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	defer att.Detach()
	ctx, cancel := p.ep.WithTimeout(r.Context(), p.hold)
	defer cancel()
	b, err := att.Next(ctx, ack)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, wire.ErrSuperseded) {
			realtime.WriteError(w, http.StatusConflict, err.Error())
		}
		return // the client went away
	}
	out := Poll{Messages: make([]Message, 0, len(b.Entries))}
	for _, e := range b.Entries {
		out.Messages = append(out.Messages, encode(e.Seq, e.Message))
	}
	if b.Gap {
		out.Gap = &Gap{After: b.GapAfter}
	}
	if b.Close != nil {
		out.Close = &CloseInfo{Code: b.Close.Code, Reason: b.Close.Reason}
	}
	http.NewResponseController(w).SetWriteDeadline(timeNow().Add(p.opts.WriteTimeout))
	// After a close the session stays for ResumeWindow, so that a client
	// whose response was lost learns the close on its next poll.
	writeJSON(w, out)
}

// encode renders a message for JSON: text as is, binary in base64.
func encode(seq uint64, m realtime.Message) Message {
	if m.Type == realtime.BinaryMessage {
		return Message{Seq: seq, Type: "binary", Data: base64.StdEncoding.EncodeToString(m.Data)}
	}
	return Message{Seq: seq, Type: "text", Data: string(m.Data)}
}

func writeJSON(w http.ResponseWriter, v any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}
