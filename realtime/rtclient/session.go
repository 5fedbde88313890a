package rtclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// post sends one message of the session by POST, for SSE and
// long-polling. The message keeps its Realtime-Seq across retries within a
// session, so the server delivers it once. What each answer means is the
// table "What ends, what reconnects" of transports/PROTOCOL.md: 2xx
// delivered; 404 resend on the session the client resumes or starts next;
// 429 retry after Retry-After; 5xx, a network error or a timeout retry
// after the backoff; any other 4xx refused for good.
func (c *Conn) post(t transport, it *outItem) error {
	c.mu.Lock()
	if c.token == "" {
		c.mu.Unlock()
		return &retryError{errors.New("rtclient: no session")}
	}
	if it.token != c.token {
		it.token, it.seq, it.attempts = c.token, c.nextSeq, 0
		c.nextSeq++
	}
	token, seq := it.token, it.seq
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, c.o.RequestTimeout)
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
		// A network error or a timeout: the same seq again after the
		// backoff. The stream's own keepalive decides about the transport.
		it.attempts++
		return &busyError{c.backoff(it.attempts - 1)}
	}
	defer drain(resp)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusNotFound:
		// The session is gone: resume or replace it, and send the
		// message there.
		err := statusError(resp)
		t.fail(err)
		return &retryError{err}
	case code == http.StatusTooManyRequests:
		// The handler is behind: the same seq is welcome again shortly.
		return &busyError{retryAfter(resp.Header.Get("Retry-After"))}
	case code >= 400 && code < 500:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return &RefusedError{StatusCode: code, Message: it.m, Body: strings.TrimSpace(string(b))}
	}
	it.attempts++
	return &busyError{c.backoff(it.attempts - 1)}
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

// deleteSession closes the session from the client's side, within ctx
// and RequestTimeout.
func (c *Conn) deleteSession(ctx context.Context, token string, code int, reason string) {
	ctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
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
