package rtclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
)

// wsTransport is one WebSocket connection.
type wsTransport struct {
	c      *Conn
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	wmu    sync.Mutex
}

// dialer builds a WebSocket dialer that goes where the HTTP client goes.
func (c *Conn) dialer() *websocket.Dialer {
	d := &websocket.Dialer{
		HandshakeTimeout: c.o.UpgradeTimeout,
		Subprotocols:     []string{realtime.Subprotocol},
		Proxy:            http.ProxyFromEnvironment,
		Jar:              c.client.Jar,
	}
	if tr, ok := c.client.Transport.(*http.Transport); ok {
		d.Proxy = tr.Proxy
		d.TLSClientConfig = tr.TLSClientConfig
		d.NetDialContext = tr.DialContext
		d.NetDialTLSContext = tr.DialTLSContext
	}
	return d
}

func (c *Conn) dialWS() (transport, error) {
	u := *c.urls[realtime.WebSocket]
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	h := c.o.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if c.o.Token != "" {
		h.Set("Authorization", "Bearer "+c.o.Token)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.o.UpgradeTimeout)
	defer cancel()
	ws, resp, err := c.dialer().DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, statusError(resp)
		}
		return nil, err
	}
	t := &wsTransport{c: c, ws: ws}
	t.ctx, t.cancel = context.WithCancelCause(c.ctx)
	if err := c.newConnection(t.ctx, nil, ""); err != nil {
		ws.Close()
		t.cancel(err)
		return nil, err
	}
	return t, nil
}

func (t *wsTransport) kind() realtime.Kind { return realtime.WebSocket }
func (t *wsTransport) proven() bool        { return true }
func (t *wsTransport) fail(err error)      { t.cancel(err) }

func (t *wsTransport) run() error {
	defer t.cancel(nil)
	stopped := make(chan struct{})
	stop := context.AfterFunc(t.ctx, func() {
		t.ws.NetConn().Close() // unblocks the read
		close(stopped)
	})
	wd := newWatchdog(t.c.idle, t.fail)
	t.ws.SetPingHandler(func(data string) error {
		wd.touch()
		err := t.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	// On the rtkit subprotocol an empty binary frame is the server's
	// heartbeat (PROTOCOL.md): it proves the path, like a ping, and is not
	// a message.
	rtkit := t.ws.Subprotocol() == realtime.Subprotocol
	var err error
	for {
		mt, data, rerr := t.ws.ReadMessage()
		if rerr != nil {
			err = rerr
			break
		}
		wd.touch()
		if rtkit && mt == websocket.BinaryMessage && len(data) == 0 {
			continue
		}
		m := realtime.Message{Type: realtime.MessageType(mt), Data: data}
		if err = t.c.deliver(t.ctx, wd, inItem{m: m}); err != nil {
			break
		}
	}
	wd.stop()
	if !stop() {
		<-stopped
	}
	t.ws.Close()
	var wce *websocket.CloseError
	if errors.As(err, &wce) {
		code := wce.Code
		if code == websocket.CloseNoStatusReceived {
			code = realtime.CloseNoStatus
		}
		return &realtime.CloseError{Code: code, Reason: wce.Text}
	}
	if t.ctx.Err() != nil {
		return context.Cause(t.ctx)
	}
	return fmt.Errorf("rtclient: websocket: %w", err)
}

func (t *wsTransport) send(it *outItem) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := t.ws.WriteMessage(int(it.m.Type), it.m.Data); err != nil {
		t.fail(err)
		return &retryError{err}
	}
	return nil
}

// close sends the close frame; run ends when the server echoes it.
func (t *wsTransport) close(ctx context.Context, code int, reason string) {
	deadline, _ := ctx.Deadline()
	if t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline) != nil {
		t.fail(realtime.ErrClosed)
	}
}
