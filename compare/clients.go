package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// session is one client connection, spoken at the wire-protocol level
// (transports/PROTOCOL.md) with no client library in between, so that the
// rtkit rows and the baselines are read by the same kind of client and the
// figures compare servers. A session is used by one goroutine at a time.
type session interface {
	// Send sends one message up.
	Send(ctx context.Context, msg []byte) error
	// Recv returns the next message down.
	Recv(ctx context.Context) ([]byte, error)
	// Push asks the server to push n payloads.
	Push(ctx context.Context, n int) error
	// Close ends the connection, politely and within a few seconds.
	Close()
}

// newHTTPClient returns a client with a transport of its own, so that each
// session has its own TCP connections, like separate browsers.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
}

func closeClient(c *http.Client) { c.CloseIdleConnections() }

// --- WebSocket (rtkit and gorilla) ---

type wsSession struct{ ws *websocket.Conn }

func openWS(ctx context.Context, s *server) (session, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, s.wsURL(), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return &wsSession{ws: ws}, nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (w *wsSession) Send(ctx context.Context, msg []byte) error {
	w.ws.SetWriteDeadline(deadline(ctx))
	return w.ws.WriteMessage(websocket.TextMessage, msg)
}

func (w *wsSession) Recv(ctx context.Context) ([]byte, error) {
	w.ws.SetReadDeadline(deadline(ctx))
	_, p, err := w.ws.ReadMessage()
	return p, err
}

func (w *wsSession) Push(ctx context.Context, n int) error {
	return w.Send(ctx, []byte(pushPrefix+strconv.Itoa(n)))
}

// Close sends a close frame and waits, briefly, for the server's.
func (w *wsSession) Close() {
	dl := time.Now().Add(2 * time.Second)
	w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), dl)
	w.ws.SetReadDeadline(dl)
	for {
		if _, _, err := w.ws.NextReader(); err != nil {
			break
		}
	}
	w.ws.Close()
}

// --- event streams (rtkit SSE, net/http loop, r3labs) ---

// stream is an open event stream.
type stream struct {
	client *http.Client
	cancel context.CancelFunc
	body   io.ReadCloser
	r      *sse.Reader
}

// openStream GETs an event stream. The stream lives until Close, or until
// ctx ends.
func openStream(ctx context.Context, url string) (*stream, error) {
	client := newHTTPClient()
	sctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		closeClient(client)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := statusError(resp)
		resp.Body.Close()
		cancel()
		closeClient(client)
		return nil, err
	}
	return &stream{client: client, cancel: cancel, body: resp.Body, r: sse.NewReader(resp.Body)}, nil
}

// next returns the data of the next message event; other events are
// skipped.
func (s *stream) next() ([]byte, error) {
	for {
		ev, err := s.r.Next()
		if err != nil {
			return nil, err
		}
		if ev.Type == "" || ev.Type == "message" {
			return ev.Data, nil
		}
		if ev.Type == "close" {
			return nil, fmt.Errorf("stream closed: %s", ev.Data)
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.body.Close()
	closeClient(s.client)
}

// pushStream is a push-only baseline's stream: the server pushes when the
// harness tells it to, in process.
type pushStream struct {
	*stream
	srv *server
}

func openPushStream(ctx context.Context, s *server) (session, error) {
	st, err := openStream(ctx, s.URL)
	if err != nil {
		return nil, err
	}
	return &pushStream{stream: st, srv: s}, nil
}

func (p *pushStream) Send(context.Context, []byte) error    { return errUnsupported }
func (p *pushStream) Recv(context.Context) ([]byte, error)  { return p.next() }
func (p *pushStream) Push(ctx context.Context, n int) error { return p.srv.push(ctx, n) }
func (p *pushStream) Close()                                { p.close() }

// postBack sends messages up a session by POST, as SSE and long-polling
// both do.
type postBack struct {
	client *http.Client // for POSTs and DELETE: a connection of their own
	url    string
	token  string
	seq    int
}

func (p *postBack) send(ctx context.Context, msg []byte) error {
	p.seq++
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(realtime.HeaderToken, p.token)
	req.Header.Set(realtime.HeaderSeq, strconv.Itoa(p.seq))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return statusError(resp)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// close DELETEs the session.
func (p *postBack) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, p.url, nil)
	req.Header.Set(realtime.HeaderToken, p.token)
	if resp, err := p.client.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	closeClient(p.client)
}

// sseSession is rtkit's SSE: the stream down, POSTs up.
type sseSession struct {
	st *stream
	pb *postBack
}

func openSSE(ctx context.Context, s *server) (session, error) {
	st, err := openStream(ctx, s.URL+"?transport=sse")
	if err != nil {
		return nil, err
	}
	ev, err := st.r.Next()
	var sess struct{ Token string }
	if err == nil && ev.Type == sse.EventSession {
		err = json.Unmarshal(ev.Data, &sess)
	} else if err == nil {
		err = fmt.Errorf("first event %q, want %q", ev.Type, sse.EventSession)
	}
	if err == nil && sess.Token == "" {
		err = errors.New("no session token")
	}
	if err != nil {
		st.close()
		return nil, err
	}
	return &sseSession{st: st, pb: &postBack{client: newHTTPClient(), url: s.URL, token: sess.Token}}, nil
}

func (s *sseSession) Send(ctx context.Context, msg []byte) error { return s.pb.send(ctx, msg) }
func (s *sseSession) Recv(context.Context) ([]byte, error)       { return s.st.next() }
func (s *sseSession) Push(ctx context.Context, n int) error {
	return s.Send(ctx, []byte(pushPrefix+strconv.Itoa(n)))
}

func (s *sseSession) Close() {
	s.pb.close()
	s.st.close()
}

// --- long-polling (rtkit) ---

// lpSession keeps one poll held at all times, as a long-poll client does,
// and hands what the polls bring to Recv.
type lpSession struct {
	pb     *postBack
	cancel context.CancelFunc
	msgs   chan []byte
	done   chan struct{}
	err    error // why the poller stopped, once done is closed
}

func openLongPoll(ctx context.Context, s *server) (session, error) {
	client := newHTTPClient()
	url := s.URL + "?transport=longpoll"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		closeClient(client)
		return nil, err
	}
	var opened struct{ Token string }
	if resp.StatusCode != http.StatusOK {
		err = statusError(resp)
	} else if err = json.NewDecoder(resp.Body).Decode(&opened); err == nil && opened.Token == "" {
		err = errors.New("no session token")
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		closeClient(client)
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	l := &lpSession{
		pb:     &postBack{client: newHTTPClient(), url: s.URL, token: opened.Token},
		cancel: cancel,
		msgs:   make(chan []byte, 1024),
		done:   make(chan struct{}),
	}
	go l.poll(pctx, client, url)
	return l, nil
}

func (l *lpSession) poll(ctx context.Context, client *http.Client, url string) {
	defer close(l.done)
	defer closeClient(client)
	var ack uint64
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			l.err = err
			return
		}
		req.Header.Set(realtime.HeaderToken, l.pb.token)
		req.Header.Set(longpoll.HeaderAck, strconv.FormatUint(ack, 10))
		resp, err := client.Do(req)
		if err != nil {
			l.err = err
			return
		}
		var p longpoll.Poll
		if resp.StatusCode != http.StatusOK {
			err = statusError(resp)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&p)
		}
		io.Copy(io.Discard, resp.Body) // to EOF, so that the next poll reuses the connection
		resp.Body.Close()
		if err != nil {
			l.err = err
			return
		}
		if p.Gap != nil {
			l.err = fmt.Errorf("gap after %d", p.Gap.After)
			return
		}
		for _, m := range p.Messages {
			select {
			case l.msgs <- []byte(m.Data):
			case <-ctx.Done():
				l.err = ctx.Err()
				return
			}
			ack = m.Seq
		}
		if p.Close != nil {
			l.err = fmt.Errorf("closed: %d %s", p.Close.Code, p.Close.Reason)
			return
		}
	}
}

func (l *lpSession) Send(ctx context.Context, msg []byte) error { return l.pb.send(ctx, msg) }

func (l *lpSession) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-l.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-l.msgs:
		return m, nil
	case <-l.done:
		select {
		case m := <-l.msgs:
			return m, nil
		default:
		}
		return nil, fmt.Errorf("poll: %w", l.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *lpSession) Push(ctx context.Context, n int) error {
	return l.Send(ctx, []byte(pushPrefix+strconv.Itoa(n)))
}

func (l *lpSession) Close() {
	l.pb.close()
	l.cancel()
	<-l.done
}

// --- request/response (rtkit) ---

// httpSession sends each message as a POST of its own; the answer is the
// message down.
type httpSession struct {
	client  *http.Client
	url     string
	pending [][]byte
}

func openHTTP(_ context.Context, s *server) (session, error) {
	return &httpSession{client: newHTTPClient(), url: s.URL}, nil
}

func (h *httpSession) Send(ctx context.Context, msg []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	h.pending = append(h.pending, b)
	return nil
}

func (h *httpSession) Recv(context.Context) ([]byte, error) {
	if len(h.pending) == 0 {
		return nil, errors.New("no answer pending")
	}
	b := h.pending[0]
	h.pending = h.pending[1:]
	return b, nil
}

func (h *httpSession) Push(context.Context, int) error { return errUnsupported }
func (h *httpSession) Close()                          { closeClient(h.client) }
