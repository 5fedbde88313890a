package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
	"github.com/rtkit/rtkit/testing/realtimetest"
	"github.com/rtkit/rtkit/transports/sse"
)

// peer is a client of one connection, whatever the transport.
type peer interface {
	// SendText sends a text message; an HTTP status error for request-based
	// transports.
	SendText(s string) error
	// Receive returns the next message, or the *realtime.CloseError the
	// peer saw once the connection closed.
	Receive(ctx context.Context) (string, error)
	// Close closes from the client's side with code and reason.
	Close(code int, reason string)
	// Drop vanishes without a close (the network is gone).
	Drop()
}

// resumer is a peer whose transport survives a dropped network.
type resumer interface {
	peer
	Resume(t *testing.T) // reconnect where the peer left off
	Token() string
}

// inbox collects what a peer's reader receives.
type inbox struct {
	msgs chan string
	mu   sync.Mutex
	ce   *realtime.CloseError
	done chan struct{}
	once sync.Once
}

func newInbox() *inbox { return &inbox{msgs: make(chan string, 1024), done: make(chan struct{})} }

func (in *inbox) closeWith(ce *realtime.CloseError) {
	in.once.Do(func() {
		in.mu.Lock()
		in.ce = ce
		in.mu.Unlock()
		close(in.done)
	})
}

func (in *inbox) Receive(ctx context.Context) (string, error) {
	select {
	case m := <-in.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-in.msgs:
		return m, nil
	case <-in.done:
		select {
		case m := <-in.msgs:
			return m, nil
		default:
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		return "", in.ce
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// memoryPeer wraps the in-memory harness.
type memoryPeer struct{ c *realtimetest.Client }

func dialMemory(t *testing.T, f *fixture, h http.Header) (peer, error) {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	for k, v := range h {
		r.Header[k] = v
	}
	if !wire.NewEndpoint(f.route, realtime.Memory).OriginAllowed(r) {
		return nil, statusError(http.StatusForbidden)
	}
	c, err := realtimetest.DialRoute(f.route, r)
	if err != nil {
		return nil, err
	}
	return memoryPeer{c}, nil
}

func (p memoryPeer) SendText(s string) error {
	if err := p.c.SendText(s); err != nil && !errors.Is(err, realtime.ErrReadLimit) {
		return err
	}
	return nil
}
func (p memoryPeer) Receive(ctx context.Context) (string, error) { return p.c.ReceiveText(ctx) }
func (p memoryPeer) Close(code int, reason string)               { p.c.Close(code, reason) }
func (p memoryPeer) Drop()                                       { p.c.Drop() }

// wsPeer is a gorilla/websocket client.
type wsPeer struct {
	ws *websocket.Conn
	*inbox
}

func dialWS(t *testing.T, f *fixture, h http.Header) (peer, error) {
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http"), h)
	if err != nil {
		if resp != nil {
			return nil, statusError(resp.StatusCode)
		}
		return nil, err
	}
	p := &wsPeer{ws: ws, inbox: newInbox()}
	go func() {
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				ce := &realtime.CloseError{Code: realtime.CloseAbnormal}
				var wce *websocket.CloseError
				if errors.As(err, &wce) {
					ce = &realtime.CloseError{Code: wce.Code, Reason: wce.Text}
				}
				p.closeWith(ce)
				ws.Close()
				return
			}
			if typ == websocket.BinaryMessage {
				data = []byte("bin:" + base64.StdEncoding.EncodeToString(data))
			}
			p.msgs <- string(data)
		}
	}()
	t.Cleanup(func() { ws.Close(); <-p.done })
	return p, nil
}

func (p *wsPeer) SendText(s string) error { return p.ws.WriteMessage(websocket.TextMessage, []byte(s)) }
func (p *wsPeer) Close(code int, reason string) {
	p.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason))
	<-p.done
}
func (p *wsPeer) Drop() { p.ws.UnderlyingConn().Close(); <-p.done }

// session is the part SSE and long-polling share: a token, POSTs with
// sequence numbers and DELETE.
type session struct {
	f      *fixture
	header http.Header
	token  string
	seq    atomic.Uint64
	last   atomic.Uint64 // highest message seq received
	*inbox
}

func (s *session) Token() string { return s.token }

func (s *session) do(method string, body io.Reader, h http.Header) (int, []byte, error) {
	req, _ := http.NewRequest(method, s.f.url, body)
	for k, v := range s.header {
		req.Header[k] = v
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

func (s *session) SendText(text string) error {
	code, body, err := s.do(http.MethodPost, strings.NewReader(text), http.Header{
		realtime.HeaderToken: {s.token},
		realtime.HeaderSeq:   {strconv.FormatUint(s.seq.Add(1), 10)},
	})
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("%w: %s", statusError(code), body)
	}
	return nil
}

func (s *session) closeRequest(code int, reason string) {
	body, _ := json.Marshal(map[string]any{"code": code, "reason": reason})
	s.do(http.MethodDelete, bytes.NewReader(body), http.Header{realtime.HeaderToken: {s.token}})
}

// ssePeer reads an SSE stream.
type ssePeer struct {
	*session
	t      *testing.T
	mu     sync.Mutex
	cancel context.CancelFunc
	ended  chan struct{}
}

func dialSSE(t *testing.T, f *fixture, h http.Header) (peer, error) {
	p := &ssePeer{session: &session{f: f, header: h, inbox: newInbox()}, t: t}
	opened := make(chan error, 1)
	if err := p.stream("", opened); err != nil {
		return nil, err
	}
	if err := <-opened; err != nil {
		return nil, err
	}
	t.Cleanup(p.stop)
	return p, nil
}

// stream opens a GET; lastID resumes. opened receives nil after the
// session event (or at once when resuming).
func (p *ssePeer) stream(lastID string, opened chan error) error {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.f.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range p.header {
		req.Header[k] = v
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return statusError(resp.StatusCode)
	}
	ended := make(chan struct{})
	p.mu.Lock()
	p.cancel, p.ended = cancel, ended
	p.mu.Unlock()
	if lastID != "" {
		opened <- nil
	}
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		r := sse.NewReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				return // dropped: the test decides whether to resume
			}
			switch ev.Type {
			case sse.EventSession:
				var s struct{ Token string }
				json.Unmarshal(ev.Data, &s)
				p.token = s.Token
				opened <- nil
			case "message", sse.EventBinary:
				if i := strings.LastIndexByte(ev.ID, '.'); i >= 0 {
					n, _ := strconv.ParseUint(ev.ID[i+1:], 10, 64)
					p.last.Store(n)
				}
				text := string(ev.Data)
				if ev.Type == sse.EventBinary {
					text = "bin:" + text
				}
				p.msgs <- text
			case sse.EventGap:
				p.msgs <- "gap:" + string(ev.Data)
			case sse.EventClose:
				var ce realtime.CloseError
				json.Unmarshal(ev.Data, &ce)
				var cd struct {
					Code   int
					Reason string
				}
				json.Unmarshal(ev.Data, &cd)
				p.closeWith(&realtime.CloseError{Code: cd.Code, Reason: cd.Reason})
				return
			}
		}
	}()
	return nil
}

func (p *ssePeer) stop() {
	p.mu.Lock()
	cancel, ended := p.cancel, p.ended
	p.mu.Unlock()
	cancel()
	<-ended
}

func (p *ssePeer) Close(code int, reason string) { p.closeRequest(code, reason); <-p.done; p.stop() }
func (p *ssePeer) Drop()                         { p.stop() }
func (p *ssePeer) Resume(t *testing.T) {
	t.Helper()
	if err := p.stream(p.token+"."+strconv.FormatUint(p.last.Load(), 10), make(chan error, 1)); err != nil {
		t.Fatalf("resume: %v", err)
	}
}

// lpPeer long-polls.
type lpPeer struct {
	*session
	mu     sync.Mutex
	cancel context.CancelFunc
	ended  chan struct{}
}

func dialLongPoll(t *testing.T, f *fixture, h http.Header) (peer, error) {
	p := &lpPeer{session: &session{f: f, header: h, inbox: newInbox()}}
	req, _ := http.NewRequest(http.MethodPost, f.url+"?transport=longpoll", nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode)
	}
	var open struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&open); err != nil {
		return nil, err
	}
	p.token = open.Token
	p.poll()
	t.Cleanup(p.stop)
	return p, nil
}

func (p *lpPeer) poll() {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	p.mu.Lock()
	p.cancel, p.ended = cancel, ended
	p.mu.Unlock()
	go func() {
		defer close(ended)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.f.url+"?transport=longpoll", nil)
			for k, v := range p.header {
				req.Header[k] = v
			}
			req.Header.Set(realtime.HeaderToken, p.token)
			req.Header.Set("Realtime-Ack", strconv.FormatUint(p.last.Load(), 10))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			var out struct {
				Messages []struct {
					Seq  uint64
					Type string
					Data string
				}
				Gap   *struct{ After uint64 }
				Close *struct {
					Code   int
					Reason string
				}
			}
			if resp.StatusCode == http.StatusConflict {
				// The server has not yet noticed that our previous poll
				// is gone (a dropped network): retry, as clients must.
				resp.Body.Close()
				select {
				case <-time.After(5 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				if ctx.Err() == nil {
					// Make the failure visible to the test.
					p.msgs <- fmt.Sprintf("poll failed: %d %v", resp.StatusCode, err)
				}
				return
			}
			if out.Gap != nil {
				p.msgs <- fmt.Sprintf(`gap:{"after":%d}`, out.Gap.After)
			}
			for _, m := range out.Messages {
				text := m.Data
				if m.Type == "binary" {
					text = "bin:" + text
				}
				p.msgs <- text
				p.last.Store(m.Seq)
			}
			if out.Close != nil {
				p.closeWith(&realtime.CloseError{Code: out.Close.Code, Reason: out.Close.Reason})
				return
			}
		}
	}()
}

func (p *lpPeer) stop() {
	p.mu.Lock()
	cancel, ended := p.cancel, p.ended
	p.mu.Unlock()
	cancel()
	<-ended
}

func (p *lpPeer) Close(code int, reason string) { p.closeRequest(code, reason); <-p.done; p.stop() }
func (p *lpPeer) Drop()                         { p.stop() }
func (p *lpPeer) Resume(t *testing.T)           { p.poll() }

// statusError is an HTTP refusal.
type statusError int

func (e statusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

func statusOf(err error) int {
	var se statusError
	if errors.As(err, &se) {
		return int(se)
	}
	return 0
}
