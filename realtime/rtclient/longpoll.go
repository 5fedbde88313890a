package rtclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// headerAck is longpoll.HeaderAck, without importing the server.
const headerAck = "Realtime-Ack"

// lpTransport polls a session, with messages up by POST.
type lpTransport struct {
	c      *Conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	heard  atomic.Bool // the server answered a poll or an open
	seen   atomic.Bool // a poll reached the server
}

// dialLongPoll opens a session, or takes over the current one (perhaps
// from an SSE stream) without a request: the first poll resumes it.
func (c *Conn) dialLongPoll() (transport, error) {
	t := &lpTransport{c: c}
	t.ctx, t.cancel = context.WithCancelCause(c.ctx)
	if token, _ := c.session(); token == "" {
		if err := t.open(nil); err != nil {
			t.cancel(err)
			return nil, err
		}
	}
	return t, nil
}

func (t *lpTransport) kind() realtime.Kind { return realtime.LongPoll }
func (t *lpTransport) proven() bool        { return t.heard.Load() }
func (t *lpTransport) fail(err error)      { t.cancel(err) }
func (t *lpTransport) send(it *outItem) error {
	return t.c.post(t, it)
}

func (t *lpTransport) close(ctx context.Context, code int, reason string) {
	token, _ := t.c.session()
	t.c.deleteSession(ctx, token, code, reason) // the poll then returns the close
}

// open starts a new session.
func (t *lpTransport) open(wd *watchdog) error {
	c := t.c
	ctx, cancel := context.WithTimeout(t.ctx, c.o.UpgradeTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodPost, c.urls[realtime.LongPoll], nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	var o struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil || o.Token == "" {
		return fmt.Errorf("rtclient: longpoll: malformed open answer")
	}
	t.heard.Store(true)
	return c.newConnection(t.ctx, wd, o.Token)
}

func (t *lpTransport) run() error {
	c := t.c
	wd := newWatchdog(c.idle, t.fail)
	defer func() {
		wd.stop()
		t.cancel(nil)
	}()
	conflicts := 0
	for {
		p, status, err := t.poll()
		if err != nil {
			if t.ctx.Err() != nil {
				return context.Cause(t.ctx)
			}
			return err
		}
		switch status {
		case http.StatusOK:
		case http.StatusNotFound:
			// The session expired or was never this client's: start a
			// new one, and say so.
			c.setGapReason("unknown session")
			if err := t.open(wd); err != nil {
				return err
			}
			c.markOpen(t)
			continue
		case http.StatusConflict:
			// The server still holds a poll of ours that the network
			// lost; it goes when the server notices.
			if conflicts++; conflicts > 10 {
				return fmt.Errorf("rtclient: longpoll: %w", &StatusError{StatusCode: status})
			}
			if !sleepCtx(t.ctx, time.Duration(conflicts)*20*time.Millisecond) {
				return context.Cause(t.ctx)
			}
			continue
		default:
			return &StatusError{StatusCode: status}
		}
		conflicts = 0
		wd.touch()
		t.heard.Store(true)
		c.markOpen(t)
		if p.Gap != nil {
			if err := c.deliver(t.ctx, wd, inItem{err: &GapError{After: p.Gap.After, Reason: "server backlog exceeded"}}); err != nil {
				return err
			}
		}
		for _, m := range p.Messages {
			msg := realtime.Text(m.Data)
			if m.Type == "binary" {
				b, err := base64.StdEncoding.DecodeString(m.Data)
				if err != nil {
					return fmt.Errorf("rtclient: longpoll: malformed binary message: %w", err)
				}
				msg = realtime.Binary(b)
			}
			if err := c.deliverSeq(t.ctx, wd, m.Seq, msg); err != nil {
				return err
			}
		}
		if p.Close != nil {
			return serverClose(p.Close.Code, p.Close.Reason)
		}
	}
}

// poll makes one held GET.
func (t *lpTransport) poll() (*longpoll.Poll, int, error) {
	c := t.c
	token, ack := c.session()
	req, err := c.newRequest(t.ctx, http.MethodGet, c.urls[realtime.LongPoll], nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(realtime.HeaderToken, token)
	req.Header.Set(headerAck, strconv.FormatUint(ack, 10))
	if !t.seen.Load() {
		// A resumed session is open once a poll reaches the server: its
		// answer may be held for the ping interval.
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil && !t.seen.Swap(true) {
					c.markOpen(t)
				}
			},
		}))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	var p longpoll.Poll
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, 0, fmt.Errorf("rtclient: longpoll: %w", err)
	}
	return &p, resp.StatusCode, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
