package sse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// Options configure the SSE transport. The zero value is the default.
type Options struct {
	// Retry is the reconnection delay the stream asks browsers for, sent
	// with the first event. Zero means 2 seconds.
	Retry time.Duration
}

// DefaultRetry is the reconnection delay of the zero Options.
const DefaultRetry = 2 * time.Second

// Transport is the SSE transport: list it in realtime.Options.Transports.
// One value may serve many routes.
type Transport struct {
	o Options
}

// New returns the SSE transport with options o.
func New(o Options) *Transport {
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	return &Transport{o: o}
}

var _ realtime.Transport = (*Transport)(nil)

// Kind returns realtime.SSE.
func (t *Transport) Kind() realtime.Kind { return realtime.SSE }

// Bind returns the SSE server for route rt.
func (t *Transport) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
	ep := wire.NewEndpoint(rt, realtime.SSE)
	return &server{ep: ep, opts: ep.Options(), retry: t.o.Retry}, nil
}

// Event types this transport sends besides "message" (see PROTOCOL.md).
const (
	EventSession = "session" // first event: {"id", "token", "transport"}
	EventBinary  = "binary"  // a binary message, base64 (standard, padded)
	EventGap     = "gap"     // messages after GapAfter were lost
	EventClose   = "close"   // the connection closed: {"code", "reason"}
)

// maxKeptBuffer is the largest write buffer a stream keeps between writes.
const maxKeptBuffer = 64 << 10

type server struct {
	ep    *wire.Endpoint
	opts  *realtime.Options
	retry time.Duration
}

var (
	_ realtime.TransportHandler = (*server)(nil)
	_ wire.Describer            = (*server)(nil)
)

// Match takes GETs that accept text/event-stream (as EventSource sends)
// or that ask for ?transport=sse.
func (s *server) Match(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	return r.URL.Query().Get("transport") == "sse" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// Describe tells negotiating clients where the stream is.
func (s *server) Describe(r *http.Request) string { return r.URL.Path + "?transport=sse" }

// open is the data of the first event of a new stream.
type open struct {
	ID        string        `json:"id"`
	Token     string        `json:"token"`
	Transport realtime.Kind `json:"transport"`
}

// ServeHTTP opens a stream, or resumes one when Last-Event-ID names a live
// session, and writes the session's messages until the client goes, the
// connection closes or a newer stream supersedes this one.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf []byte
	link, cursor, resumed := s.resume(r)
	if !resumed {
		if att, token, cursor, ok := s.follow(r); ok {
			// The session lives on another node: stream it from there.
			setHeaders(w)
			if !s.stream(w, r, att, token, cursor, nil) {
				att.Detach()
			}
			return
		}
		var err error
		if link, err = s.ep.Accept(r); err != nil {
			wire.Refuse(w, err)
			return
		}
		if r.Header.Get("Last-Event-ID") != "" {
			// The session is gone: say so before the new one starts.
			buf, _ = AppendEvent(buf, Event{Type: EventGap, Data: []byte(`{"reason":"unknown session"}`)})
		}
	}
	setHeaders(w)

	var token string
	if resumed {
		token, _, _ = ParseID(r.Header.Get("Last-Event-ID"))
	} else {
		// retry rides on the session event: a retry-only event would
		// reach clients such as r3labs/sse as an empty message. Browsers
		// keep the delay across reconnects, so a resumed stream needs none.
		token = link.OpenSession(r)
		data, _ := json.Marshal(open{ID: link.Conn().ID(), Token: token, Transport: realtime.SSE})
		buf, _ = AppendEvent(buf, Event{ID: eventID(token, 0), Type: EventSession, Data: data, Retry: s.retry})
	}
	att, err := link.Attach(false)
	if err != nil {
		w.WriteHeader(http.StatusOK)
		return // the session ended between Resume and Attach
	}
	if !s.stream(w, r, att, token, cursor, buf) {
		att.Detach()
	}
}

// stream writes buf, then the session's events after cursor, until the
// client goes, the connection closes or a newer stream supersedes this
// one, on a response whose headers setHeaders wrote.
//
// It returns at once when it could take the connection over (see
// hijack): att is then detached by the stream's own goroutine.
func (s *server) stream(w http.ResponseWriter, r *http.Request, att *wire.Attachment, token string, cursor uint64, buf []byte) (detached bool) {
	st := &stream{w: w, ep: s.ep, opts: s.opts, token: token, buf: buf}
	if conn := hijack(w, r); conn != nil {
		// Keep nothing of net/http's: its response holds the
		// connection's buffers.
		st.w, st.conn = nil, conn
		ctx, cancel := context.WithCancel(context.Background())
		go watch(conn, cancel)
		go func() {
			defer conn.Close()
			defer att.Detach()
			defer cancel()
			if st.flush() == nil {
				st.run(ctx, att, cursor)
				conn.end() // as net/http ends a handler's response
			}
		}()
		return true
	}
	w.WriteHeader(http.StatusOK)
	st.rc = http.NewResponseController(w)
	if err := st.flush(); err != nil {
		return false
	}
	st.run(r.Context(), att, cursor)
	return false
}

// setHeaders sets the headers of an event-stream response.
func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
}

// follow finds the session that r's Last-Event-ID names on another node
// of the cluster, for a client that came back to this one.
func (s *server) follow(r *http.Request) (att *wire.Attachment, token string, cursor uint64, ok bool) {
	token, cursor, ok = ParseID(r.Header.Get("Last-Event-ID"))
	if !ok {
		return nil, "", 0, false
	}
	att, err := s.ep.Follow(r, token, cursor)
	if err != nil {
		return nil, "", 0, false
	}
	return att, token, cursor, true
}

// resume finds the session that r's Last-Event-ID names.
func (s *server) resume(r *http.Request) (link *wire.Link, cursor uint64, ok bool) {
	token, seq, ok := ParseID(r.Header.Get("Last-Event-ID"))
	if !ok {
		return nil, 0, false
	}
	link, err := s.ep.Resume(r, token)
	if err != nil {
		return nil, 0, false
	}
	return link, seq, true
}

// stream writes one response's events, to the ResponseWriter or, once
// hijacked, to the connection itself.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController // nil when hijacked
	conn  *chunkedConn             // the hijacked connection, or nil
	ep    *wire.Endpoint
	opts  *realtime.Options
	token string
	buf   []byte
}

// run relays batches from the session, with a comment every PingInterval
// while nothing else is sent, so that proxies do not idle the stream out.
func (st *stream) run(ctx context.Context, att *wire.Attachment, cursor uint64) {
	for {
		wait, cancel := ctx, context.CancelFunc(func() {})
		if st.opts.PingInterval > 0 {
			wait, cancel = st.ep.WithTimeout(ctx, st.opts.PingInterval)
		}
		b, err := att.Next(wait, cursor)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			st.buf = AppendComment(st.buf, "ping")
			if st.flush() != nil {
				return
			}
			continue
		default:
			return // client gone or superseded
		}
		if b.Gap {
			st.buf, _ = AppendEvent(st.buf, Event{Type: EventGap, Data: fmt.Appendf(nil, `{"after":%d}`, b.GapAfter)})
		}
		for _, e := range b.Entries {
			st.appendEntry(e)
			cursor = e.Seq
		}
		if b.Close != nil {
			data, _ := json.Marshal(closeData{Code: b.Close.Code, Reason: b.Close.Reason})
			st.buf, _ = AppendEvent(st.buf, Event{Type: EventClose, Data: data})
		}
		if st.flush() != nil {
			return
		}
		if b.Close != nil {
			// The session stays resumable for ResumeWindow: a write that
			// succeeded may still be lost with the connection, and a
			// client that reconnects must learn the close, not a 404.
			return
		}
	}
}

type closeData struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// appendEntry encodes one message: text as a "message" event, binary as a
// "binary" event in base64.
func (st *stream) appendEntry(e wire.Entry) {
	if wire.IsShared(e.Message) {
		// A broadcast: its event body is encoded once for every stream;
		// only the id line is this stream's.
		body, _ := wire.Encoded(e.Message, realtime.SSE, eventBody)
		st.buf, _ = AppendEvent(st.buf, Event{ID: eventID(st.token, e.Seq)})
		st.buf = append(st.buf[:len(st.buf)-1], body.([]byte)...) // drop the blank line
		return
	}
	ev := Event{ID: eventID(st.token, e.Seq), Data: e.Data}
	if e.Type == realtime.BinaryMessage {
		ev.Type = EventBinary
		ev.Data = base64.StdEncoding.AppendEncode(nil, e.Data)
	}
	if ev.Data == nil {
		ev.Data = []byte{} // an empty message is still a message
	}
	st.buf, _ = AppendEvent(st.buf, ev)
}

// eventBody encodes a message's event without its id.
func eventBody(m realtime.Message) (any, error) {
	ev := Event{Data: m.Data}
	if m.Type == realtime.BinaryMessage {
		ev.Type = EventBinary
		ev.Data = base64.StdEncoding.AppendEncode(nil, m.Data)
	}
	if ev.Data == nil {
		ev.Data = []byte{}
	}
	return AppendEvent(nil, ev)
}

// flush writes the buffered events within WriteTimeout.
func (st *stream) flush() error {
	var err error
	if st.conn != nil {
		st.conn.SetWriteDeadline(time.Now().Add(st.opts.WriteTimeout))
		_, err = st.conn.Write(st.buf)
	} else {
		st.rc.SetWriteDeadline(time.Now().Add(st.opts.WriteTimeout))
		if _, err = st.w.Write(st.buf); err == nil {
			err = st.rc.Flush()
		}
	}
	st.buf = st.buf[:0]
	if cap(st.buf) > maxKeptBuffer {
		st.buf = nil // do not hold a burst's buffer for the stream's life
	}
	return err
}

// eventID is "<token>.<seq>": a reconnecting EventSource sends it back as
// Last-Event-ID, which names both the session and the position in it.
func eventID(token string, seq uint64) string {
	return token + "." + strconv.FormatUint(seq, 10)
}

// ParseID reads an event id as the stream sends it, "<token>.<seq>": the
// session's token and the message's sequence number (0 for the session
// event). Clients that resume a stream by hand, and the Go client, use it.
func ParseID(id string) (token string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id[:i], seq, true
}
