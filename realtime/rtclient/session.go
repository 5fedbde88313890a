package rtclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// post sends one message of the session by POST, for SSE and
// long-polling. The message keeps its Realtime-Seq across retries within a
// session, so the server delivers it once.
func (c *Conn) post(t transport, it *outItem) error {
	c.mu.Lock()
	if c.token == "" {
		c.mu.Unlock()
		return &retryError{errors.New("rtclient: no session")}
	}
	if it.token != c.token {
		it.token, it.seq = c.token, c.nextSeq
		c.nextSeq++
	}
	token, seq := it.token, it.seq
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodPost, c.base, bytes.NewReader(it.m.Data))
	if err != nil {
		return err
	}
	req.Header.Set(realtime.HeaderToken, token)
	req.Header.Set(realtime.HeaderSeq, strconv.FormatUint(seq, 10))
	if it.m.Type == realtime.BinaryMessage {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if c.ctx.Err() != nil {
			return realtime.ErrClosed
		}
		t.fail(err) // the path to the server is broken: reconnect, then retry
		return &retryError{err}
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500:
		// The session is gone or the server is going: the stream learns
		// why and a new transport or session takes the message.
		return &retryError{statusError(resp)}
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case resp.StatusCode == http.StatusTooManyRequests:
		// The handler is behind: the same seq is welcome again shortly.
		return &busyError{retryAfter(resp.Header.Get("Retry-After"))}
	}
	return statusError(resp)
}

// retryAfter reads a Retry-After header in seconds: one second when it is
// missing or malformed, at most maxRetryAfter.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// maxRetryAfter caps the pause a server may ask for.
const maxRetryAfter = 30 * time.Second

// deleteSession closes the session from the client's side.
func (c *Conn) deleteSession(ctx context.Context, token string, code int, reason string) {
	body, _ := json.Marshal(struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}{code, reason})
	req, err := c.newRequest(ctx, http.MethodDelete, c.base, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set(realtime.HeaderToken, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		c.log.Debug("rtclient: close request failed", "err", err)
		return
	}
	drain(resp)
}
