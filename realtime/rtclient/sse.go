package rtclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/sse"
)

// sseTransport is one event stream, with messages up by POST.
type sseTransport struct {
	c      *Conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	body   io.ReadCloser
	r      *sse.Reader
	wd     *watchdog
}

// dialSSE opens a stream: a new session, or the current one resumed with
// Last-Event-ID. A new stream is open at its session event; a resumed one,
// which starts with nothing, once its headers arrive. Either must come
// within FirstEventTimeout, or the stream is taken for buffered.
func (c *Conn) dialSSE() (_ transport, err error) {
	t := &sseTransport{c: c}
	t.ctx, t.cancel = context.WithCancelCause(c.ctx)
	defer func() {
		if err != nil {
			t.cancel(err)
			if t.body != nil {
				t.body.Close()
			}
		}
	}()
	timer := time.AfterFunc(c.o.FirstEventTimeout, func() { t.cancel(ErrBuffered) })
	defer timer.Stop()

	token, last := c.session()
	req, err := c.newRequest(t.ctx, http.MethodGet, c.urls[realtime.SSE], nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	if token != "" {
		req.Header.Set("Last-Event-ID", token+"."+strconv.FormatUint(last, 10))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if t.ctx.Err() != nil {
			return nil, context.Cause(t.ctx)
		}
		return nil, err
	}
	t.body = resp.Body
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, fmt.Errorf("rtclient: sse: Content-Type %q", ct)
	}
	t.r = sse.NewReader(activity{r: resp.Body, wd: &t.wd})
	t.r.MaxEventSize = c.o.MaxEventSize
	for token == "" { // a new session: wait for its event
		ev, err := t.r.Next()
		if err != nil {
			if t.ctx.Err() != nil {
				return nil, context.Cause(t.ctx)
			}
			return nil, fmt.Errorf("rtclient: sse: %w", err)
		}
		isSession, err := t.handle(ev)
		if err != nil {
			return nil, err
		}
		if isSession {
			break
		}
	}
	if !timer.Stop() {
		return nil, ErrBuffered // it fired just now
	}
	return t, nil
}

func (t *sseTransport) kind() realtime.Kind { return realtime.SSE }
func (t *sseTransport) proven() bool        { return true }
func (t *sseTransport) fail(err error)      { t.cancel(err) }
func (t *sseTransport) send(it *outItem) error {
	return t.c.post(t, it)
}

func (t *sseTransport) close(ctx context.Context, code int, reason string) {
	token, _ := t.c.session()
	t.c.deleteSession(ctx, token, code, reason) // the stream then carries the close event
}

// errStreamEnded is a stream that ended without a close event.
var errStreamEnded = errors.New("rtclient: sse: stream ended")

func (t *sseTransport) run() error {
	t.wd = newWatchdog(t.c.idle, t.fail)
	defer func() {
		t.wd.stop()
		t.cancel(nil)
		t.body.Close()
	}()
	for {
		ev, err := t.r.Next()
		if err != nil {
			if t.ctx.Err() != nil {
				return context.Cause(t.ctx)
			}
			if err == io.EOF {
				return errStreamEnded
			}
			if errors.Is(err, sse.ErrEventTooLarge) {
				// Too large to hold: end, as a message over the read limit
				// does, rather than reconnect to the same event.
				token, _ := t.c.session()
				t.c.deleteSession(t.ctx, token, realtime.CloseTooBig, "event too large")
				return &realtime.CloseError{Code: realtime.CloseTooBig, Reason: "event too large", Err: err}
			}
			return fmt.Errorf("rtclient: sse: %w", err)
		}
		if _, err := t.handle(ev); err != nil {
			return err
		}
	}
}

// handle processes one event. It reports a session event, and returns a
// *realtime.CloseError for a close event.
func (t *sseTransport) handle(ev sse.Event) (session bool, err error) {
	c := t.c
	switch ev.Type {
	case sse.EventSession:
		var s struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(ev.Data, &s); err != nil || s.Token == "" {
			return false, fmt.Errorf("rtclient: sse: malformed session event")
		}
		if tok, _ := c.session(); tok == s.Token {
			return true, nil
		}
		return true, c.newConnection(t.ctx, t.wd, s.Token)
	case "message":
		return false, c.deliverSeq(t.ctx, t.wd, eventSeq(ev.ID), realtime.Text(string(ev.Data)))
	case sse.EventBinary:
		b, err := base64.StdEncoding.DecodeString(string(ev.Data))
		if err != nil {
			return false, fmt.Errorf("rtclient: sse: malformed binary event: %w", err)
		}
		return false, c.deliverSeq(t.ctx, t.wd, eventSeq(ev.ID), realtime.Binary(b))
	case sse.EventGap:
		var g struct {
			After  uint64 `json:"after"`
			Reason string `json:"reason"`
		}
		json.Unmarshal(ev.Data, &g)
		if g.Reason != "" { // the session is gone; a new one follows
			c.setGapReason(g.Reason)
			return false, nil
		}
		return false, c.deliver(t.ctx, t.wd, inItem{err: &GapError{After: g.After, Reason: "server backlog exceeded"}})
	case sse.EventClose:
		var ce struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(ev.Data, &ce); err != nil || ce.Code == 0 {
			ce.Code = realtime.CloseNoStatus
		}
		return false, serverClose(ce.Code, ce.Reason)
	}
	return false, nil
}

// eventSeq reads the seq of an event id; 0 when it has none.
func eventSeq(id string) uint64 {
	_, seq, _ := sse.ParseID(id)
	return seq
}
