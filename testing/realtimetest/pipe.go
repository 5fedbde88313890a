package realtimetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// Memory is the in-memory transport, of kind realtime.Memory, for routes
// that tests reach only through DialRoute: a route needs a transport, and
// this one serves no HTTP. DialRoute reaches any route in memory, whatever
// its transports; Dial makes a route with this one.
var Memory realtime.Transport = memory{}

type memory struct{}

func (memory) Kind() realtime.Kind { return realtime.Memory }
func (memory) Bind(*realtime.Route) (realtime.TransportHandler, error) {
	return noHTTP{}, nil
}

type noHTTP struct{}

func (noHTTP) Match(*http.Request) bool { return false }
func (noHTTP) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "realtimetest: the memory transport has no HTTP side", http.StatusNotFound)
}

// DefaultBuffer is how many messages a Client holds unread before the
// server's writes to it block, like a full TCP window.
const DefaultBuffer = 1024

// Client is the peer side of an in-memory connection. Its methods are safe
// for concurrent use.
type Client struct {
	link *wire.Link
	opts *realtime.Options

	mu     sync.Mutex
	inbox  []realtime.Message
	limit  int
	notify chan struct{} // closed and replaced when inbox or closed changes
	closed *realtime.CloseError
}

// Dial opens a connection to h with options o (nil means the defaults) on
// a new route. The handler's Open has returned when Dial returns. The
// error is non-nil only if the route refuses the connection (such as
// realtime.ErrTooManyConns); a failing Open closes the connection, which
// Receive then reports.
func Dial(h realtime.Handler, o *realtime.Options) (*Client, error) {
	var oo realtime.Options
	if o != nil {
		oo = *o
	}
	oo.Transports = []realtime.Transport{Memory}
	return DialRoute(realtime.NewRoute(h, &oo), nil)
}

// DialRoute opens a connection on an existing route, so that several
// clients share it (and its MaxConns, Len and Shutdown). r is the request
// the handler sees as Conn.Request (headers, query, context values set by
// middleware); nil means a plain GET of "/". The route's transports need
// not list Memory.
func DialRoute(rt *realtime.Route, r *http.Request) (*Client, error) {
	if r == nil {
		r = httptest.NewRequest(http.MethodGet, "/", nil)
	}
	ep := wire.NewEndpoint(rt, realtime.Memory)
	link, err := ep.Accept(r)
	if err != nil {
		return nil, err
	}
	c := &Client{link: link, opts: ep.Options(), limit: DefaultBuffer, notify: make(chan struct{})}
	link.Open((*pipeEnd)(c))
	return c, nil
}

// Conn returns the server side of the connection, for assertions.
func (c *Client) Conn() *realtime.Conn { return c.link.Conn() }

// Send delivers m to the handler's Message and returns when it has
// returned. A message over Options.ReadLimit closes the connection with
// realtime.CloseTooBig, as a WebSocket server would. Send returns
// realtime.ErrClosed once the connection is closed.
func (c *Client) Send(m realtime.Message) error {
	if c.CloseError() != nil {
		return realtime.ErrClosed
	}
	if int64(len(m.Data)) > int64(c.opts.ReadLimit) {
		c.link.Closed(&realtime.CloseError{Code: realtime.CloseTooBig, Reason: "message too big", Err: realtime.ErrReadLimit})
		return realtime.ErrReadLimit
	}
	c.link.Receive(m)
	return nil
}

// SendText sends a text message.
func (c *Client) SendText(s string) error { return c.Send(realtime.Text(s)) }

// SendJSON sends v encoded as JSON in a text message.
func (c *Client) SendJSON(v any) error {
	m, err := realtime.JSON(v)
	if err != nil {
		return err
	}
	return c.Send(m)
}

// Receive returns the next message the handler sent. Once the connection
// has closed and every message was received, it returns the
// *realtime.CloseError the client saw (realtime.CloseStatus gives its
// code). It returns ctx's error if ctx ends first.
func (c *Client) Receive(ctx context.Context) (realtime.Message, error) {
	for {
		c.mu.Lock()
		if len(c.inbox) > 0 {
			m := c.inbox[0]
			c.inbox[0] = realtime.Message{}
			c.inbox = c.inbox[1:]
			c.signalLocked()
			c.mu.Unlock()
			return m, nil
		}
		if c.closed != nil {
			ce := c.closed
			c.mu.Unlock()
			return realtime.Message{}, ce
		}
		wait := c.notify
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return realtime.Message{}, ctx.Err()
		}
	}
}

// ReceiveText receives a message and returns its text.
func (c *Client) ReceiveText(ctx context.Context) (string, error) {
	m, err := c.Receive(ctx)
	return string(m.Data), err
}

// ReceiveJSON receives a message and decodes it into v.
func (c *Client) ReceiveJSON(ctx context.Context, v any) error {
	m, err := c.Receive(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("realtimetest: %w: %v", realtime.ErrMalformed, err)
	}
	return nil
}

// Close closes the connection from the client's side with code and reason,
// as a WebSocket close frame would. It returns when the handler's Close
// has returned.
func (c *Client) Close(code int, reason string) error {
	ce := &realtime.CloseError{Code: code, Reason: reason}
	c.mu.Lock()
	if c.closed == nil {
		c.closed = ce
		c.signalLocked()
	}
	c.mu.Unlock()
	c.link.Closed(ce)
	<-c.Done() // the server may have been closing already
	return nil
}

// Drop ends the connection as a vanished peer does, without a close code:
// the handler's Close sees realtime.CloseAbnormal.
func (c *Client) Drop() {
	c.Close(realtime.CloseAbnormal, "connection lost")
}

// CloseError returns how the connection closed as the client saw it, or
// nil while it is open.
func (c *Client) CloseError() *realtime.CloseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Done is closed when the server side has finished: the handler's Close
// has returned and the connection's timers and goroutines have stopped.
func (c *Client) Done() <-chan struct{} { return c.link.Conn().Done() }

// SetBuffer sets how many unread messages the client holds before the
// server's writes block (DefaultBuffer unless set). A small buffer and a
// test that does not Receive make a slow consumer.
func (c *Client) SetBuffer(n int) {
	c.mu.Lock()
	c.limit = max(n, 1)
	c.signalLocked()
	c.mu.Unlock()
}

func (c *Client) signalLocked() {
	close(c.notify)
	c.notify = make(chan struct{})
}

// pipeEnd is the server's side of the pipe.
type pipeEnd Client

// Write appends msgs to the client's inbox, waiting while it is full for
// at most Options.WriteTimeout (real time).
func (w *pipeEnd) Write(msgs []realtime.Message) error {
	c := (*Client)(w)
	var deadline <-chan time.Time
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		for len(c.inbox) >= c.limit {
			if c.closed != nil {
				return realtime.ErrClosed
			}
			if deadline == nil {
				t := time.NewTimer(c.opts.WriteTimeout)
				defer t.Stop()
				deadline = t.C
			}
			c.signalLocked() // what this batch appended so far is there to read
			wait := c.notify
			c.mu.Unlock()
			select {
			case <-wait:
				c.mu.Lock()
			case <-deadline:
				c.mu.Lock()
				return realtime.ErrWriteTimeout
			}
		}
		if c.closed != nil {
			return realtime.ErrClosed
		}
		m.Data = append([]byte(nil), m.Data...) // the core reuses nothing, but a test may keep it
		c.inbox = append(c.inbox, m)
	}
	c.signalLocked()
	return nil
}

// Close records the server's close for the client. The first call also
// ends the "read loop", on a goroutine of its own because it waits for
// the handler's Close.
func (w *pipeEnd) Close(code int, reason string) error {
	c := (*Client)(w)
	c.mu.Lock()
	first := c.closed == nil
	if first {
		c.closed = &realtime.CloseError{Code: code, Reason: reason}
		c.signalLocked()
	}
	c.mu.Unlock()
	if first {
		go c.link.Closed(nil)
	}
	return nil
}
