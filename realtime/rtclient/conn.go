package rtclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// transport is one attempt at one transport, from a successful connect to
// the end of run. Its methods other than run are safe to call from other
// goroutines.
type transport interface {
	kind() realtime.Kind
	// run reads from the server until the transport ends, on the
	// connection's goroutine. It returns a *realtime.CloseError when the
	// server closed the connection, any other error when it was lost.
	run() error
	// proven reports whether the server has answered on this transport,
	// which resets the backoff.
	proven() bool
	// send writes one message. A *retryError keeps it queued until the
	// transport or the session changes.
	send(it *outItem) error
	// close tells the server the client closes, within ctx.
	close(ctx context.Context, code int, reason string)
	// fail ends the transport with a cause.
	fail(err error)
}

// retryError asks the sender to keep the message for the next transport
// or session.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// busyError asks the sender to send the same message again, on the same
// transport and with the same sequence number, after a pause: the server
// is behind (429) and accepted nothing.
type busyError struct{ after time.Duration }

func (e *busyError) Error() string { return "rtclient: server busy; retrying in " + e.after.String() }

// outItem is a queued message.
type outItem struct {
	m        realtime.Message
	done     chan error // buffered: the sender never waits
	token    string     // session the seq was assigned in
	seq      uint64
	attempts int         // failed POSTs of this seq, for the backoff
	unheard  atomic.Bool // no Send waits for done: a refusal goes to Receive
}

// inItem is a received message or a gap.
type inItem struct {
	m   realtime.Message
	err error
}

// Conn is a client connection to a route, whatever the transport.
//
// A Conn is safe for use by many goroutines at once: any number may call
// Send (messages from one goroutine keep their order; messages from
// several are ordered as Send queued them), Receive (each message goes to
// one of them), State, Transport and Close. Internally one goroutine reads
// from the server and one writes; c.mu guards what they share with the
// callers, and OnState calls never overlap.
type Conn struct {
	o         Options
	log       *slog.Logger
	client    *http.Client
	ownClient bool
	base      *url.URL
	urls      map[realtime.Kind]*url.URL
	kinds     []realtime.Kind        // in the route's order, among Options.Transports
	blocked   map[realtime.Kind]bool // failed while a later one worked: a proxy blocks them
	idle      time.Duration          // pingInterval+pongTimeout; 0: no keepalive
	readLimit int64

	ctx      context.Context // ends when the connection ends
	cancel   context.CancelFunc
	stopLife func() bool // stops watching Dial's context
	wg       sync.WaitGroup
	loopDone chan struct{} // the supervisor has finished
	sendDone chan struct{}
	inbox    chan inItem
	done     chan struct{}

	notifyMu sync.Mutex // serialises state changes and OnState calls

	mu        sync.Mutex
	state     State
	kindNow   realtime.Kind
	cur       transport
	gen       uint64        // bumped when cur or the session changes
	changed   chan struct{} // closed and replaced on every change
	outbox    []*outItem
	token     string // the SSE/long-poll session
	lastSeq   uint64 // highest seq delivered in the session
	nextSeq   uint64 // next Realtime-Seq in the session
	conns     int    // server connections opened
	gapReason string
	closing   bool
	final     *realtime.CloseError
	// sending is set while sendLoop has a message on the wire. Close
	// waits for its answer (sendLoop closes sentWait, which Close makes
	// only then), so a message the server accepted is not reported as
	// ErrClosed; sendLoop starts no message once closing is set.
	sending  bool
	sentWait chan struct{}
}

// Dial connects to the route at rawURL (http or https; ws and wss are
// taken as http and https), trying the transports in the route's order,
// and returns once one is open.
//
// ctx is the connection's for its whole life: while it lasts the
// connection reconnects as needed; when it ends, during Dial or after, the
// connection closes with 1001 going away (telling the server when it can)
// and Receive returns a *realtime.CloseError whose Err is the context's
// cause. Dial does not retry: when no transport connects it returns an
// error joining each attempt's, or a *realtime.CloseError with 1008 when
// the route refused the credentials or origin (401 or 403).
func Dial(ctx context.Context, rawURL string, o *Options) (*Conn, error) {
	c, err := newConn(rawURL, o)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, c.cancel)
	c.notify(Connecting, "", nil)
	if !c.o.NoNegotiate {
		if err := c.negotiate(); err != nil {
			stop()
			c.abandon()
			c.notify(Closed, "", err)
			return nil, err
		}
	}
	t, err := c.connectAny(c.kinds)
	if !stop() {
		if err == nil {
			t.fail(ctx.Err())
			t.run() // releases it: the context has ended
		}
		err = ctx.Err()
	}
	if err != nil {
		c.abandon()
		c.notify(Closed, "", err)
		return nil, err
	}
	c.mu.Lock()
	c.state, c.kindNow = Open, t.kind()
	c.cur = t // current at once, so that a Close right after Dial tells the server
	c.mu.Unlock()
	c.notify(Open, t.kind(), nil)
	c.stopLife = context.AfterFunc(ctx, func() {
		c.closeFor(realtime.CloseGoingAway, "context done", context.Cause(ctx))
	})
	c.wg.Add(2)
	go c.supervise(t)
	go c.sendLoop()
	return c, nil
}

func newConn(rawURL string, o *Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rtclient: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("rtclient: URL scheme %q: want http or https", u.Scheme)
	}
	u.Fragment = ""
	c := &Conn{
		o:        o.resolved(),
		base:     u,
		idle:     realtime.DefaultPingInterval + realtime.DefaultPongTimeout,
		loopDone: make(chan struct{}),
		sendDone: make(chan struct{}),
		inbox:    make(chan inItem, 64),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		state:    Connecting,
	}
	c.log = c.o.Logger.With("url", u.Redacted())
	c.client = c.o.HTTPClient
	if c.client == nil {
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownClient = true
	}
	c.kinds = c.o.Transports
	c.blocked = map[realtime.Kind]bool{}
	c.urls = map[realtime.Kind]*url.URL{
		realtime.WebSocket: u,
		realtime.SSE:       withQuery(u, "transport", "sse"),
		realtime.LongPoll:  withQuery(u, "transport", "longpoll"),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

func withQuery(u *url.URL, k, v string) *url.URL {
	out := *u
	q := out.Query()
	q.Set(k, v)
	out.RawQuery = q.Encode()
	return &out
}

// abandon releases a Conn that Dial gives up on.
func (c *Conn) abandon() {
	c.cancel()
	if c.ownClient {
		c.client.CloseIdleConnections()
	}
}

// negotiate asks the route what it allows, and in which order. A route
// that does not answer with JSON (a proxy in between, an old server) is
// tried with the defaults; a route that refuses the client (401, 403) or
// lists none of Options.Transports fails Dial.
func (c *Conn) negotiate() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.o.UpgradeTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, c.base, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		c.log.Debug("rtclient: negotiation failed", "err", err)
		return nil
	}
	defer resp.Body.Close()
	if isRefusal(resp.StatusCode) {
		return refusal(resp)
	}
	var n protocol.Negotiation
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "json") ||
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&n) != nil || len(n.Transports) == 0 {
		c.log.Debug("rtclient: no negotiation", "status", resp.StatusCode)
		return nil
	}
	listed := map[realtime.Kind]*url.URL{}
	for _, ti := range n.Transports {
		ref, err := url.Parse(ti.URL)
		if err != nil {
			continue
		}
		u := c.base.ResolveReference(ref)
		switch u.Scheme {
		case "ws":
			u.Scheme = "http"
		case "wss":
			u.Scheme = "https"
		}
		if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
			continue // the token goes to the route's own origin only, never downgraded to http
		}
		listed[realtime.Kind(ti.Transport)] = u
	}
	// The route's order, among the transports the client allows.
	var kinds []realtime.Kind
	for _, ti := range n.Transports {
		k := realtime.Kind(ti.Transport)
		if u, ok := listed[k]; ok && slices.Contains(c.kinds, k) && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
			c.urls[k] = u
		}
	}
	if len(kinds) == 0 {
		return fmt.Errorf("rtclient: the route allows none of the transports %v", c.kinds)
	}
	c.kinds = kinds
	if n.PingInterval > 0 {
		// Saturated, not wrapped: a huge interval means no timeout, not
		// a short one.
		const maxMs = math.MaxInt64 / int64(time.Millisecond)
		ms := min(n.PingInterval, maxMs) + min(max(n.PongTimeout, 0), maxMs)
		c.idle = time.Duration(min(ms, maxMs)) * time.Millisecond
	} else {
		c.idle = 0 // the server sends no keepalives: silence proves nothing
	}
	c.readLimit = n.ReadLimit
	return nil
}

// connectAny tries kinds in order and returns the first transport that
// opens. Those that failed before it are blocked from then on (a proxy
// refuses them); an SSE or long-poll open answered 401 or 403 ends the
// attempt with a *realtime.CloseError of 1008.
func (c *Conn) connectAny(kinds []realtime.Kind) (transport, error) {
	var errs []error
	var failed []realtime.Kind
	for _, k := range kinds {
		start := time.Now()
		t, err := c.connect(k)
		if err == nil {
			c.log.Debug("rtclient: connected", "transport", string(k), "took", time.Since(start))
			c.mu.Lock()
			for _, f := range failed {
				c.blocked[f] = true
			}
			c.mu.Unlock()
			return t, nil
		}
		c.log.Debug("rtclient: transport failed", "transport", string(k), "took", time.Since(start), "err", err)
		var se *StatusError
		if errors.As(err, &se) && isRefusal(se.StatusCode) && k != realtime.WebSocket { // a proxy may refuse upgrades alone
			return nil, &realtime.CloseError{Code: realtime.ClosePolicyViolation, Reason: se.Error(), Err: se}
		}
		errs = append(errs, fmt.Errorf("%s: %w", k, err))
		failed = append(failed, k)
		if c.ctx.Err() != nil {
			break
		}
	}
	if c.ctx.Err() != nil {
		return nil, realtime.ErrClosed
	}
	return nil, fmt.Errorf("rtclient: no transport connected: %w", errors.Join(errs...))
}

func (c *Conn) connect(k realtime.Kind) (transport, error) {
	switch k {
	case realtime.WebSocket:
		return c.dialWS()
	case realtime.SSE:
		return c.dialSSE()
	case realtime.LongPoll:
		return c.dialLongPoll()
	}
	return nil, fmt.Errorf("rtclient: unsupported transport %q", k)
}

// supervise runs transports one after the other until the connection ends.
func (c *Conn) supervise(t transport) {
	defer c.wg.Done()
	defer close(c.loopDone)
	attempt := 0
	for {
		err := c.serve(t)
		if t.proven() {
			attempt = 0
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			c.finish(nil)
			return
		}
		var ce *realtime.CloseError
		if errors.As(err, &ce) {
			if c.o.MaxRetries < 0 || !c.o.Reconnect(ce) {
				c.finish(ce)
				return
			}
			c.mu.Lock()
			c.token = "" // the session is closed: the next one is new
			c.mu.Unlock()
		} else if c.o.MaxRetries < 0 {
			c.finish(&realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "connection lost", Err: err})
			return
		}
		c.log.Debug("rtclient: reconnecting", "transport", string(t.kind()), "err", err)
		c.setState(Reconnecting, t.kind(), err)
		last := t.kind()
		for {
			if c.o.MaxRetries > 0 && attempt >= c.o.MaxRetries {
				c.finish(&realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "reconnect failed", Err: err})
				return
			}
			if !c.sleep(c.backoff(attempt)) {
				c.finish(nil)
				return
			}
			attempt++
			var cerr error
			if t, cerr = c.connectAny(c.reconnectOrder(last)); cerr == nil {
				break
			}
			if c.ctx.Err() != nil {
				c.finish(nil)
				return
			}
			if errors.As(cerr, &ce) { // refused: 401 or 403
				c.finish(ce)
				return
			}
			err = cerr
		}
	}
}

// serve makes t the current transport while it runs.
func (c *Conn) serve(t transport) error {
	c.mu.Lock()
	c.cur, c.kindNow = t, t.kind()
	c.signalLocked()
	c.mu.Unlock()
	if t.proven() {
		c.setState(Open, t.kind(), nil)
	}
	err := t.run()
	c.mu.Lock()
	c.cur = nil
	c.signalLocked()
	c.mu.Unlock()
	return err
}

// markOpen is called by a transport once the server has answered. It is
// ignored once t is no longer current.
func (c *Conn) markOpen(t transport) {
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.mu.Lock()
	if c.cur != t || c.state == Open || c.state == Closed {
		c.mu.Unlock()
		return
	}
	c.state = Open
	c.mu.Unlock()
	c.notify(Open, t.kind(), nil)
}

// reconnectOrder is the order of a reconnect's attempts: the route's,
// without the blocked transports, and with the session's transport first
// while there is a session to resume.
func (c *Conn) reconnectOrder(last realtime.Kind) []realtime.Kind {
	c.mu.Lock()
	defer c.mu.Unlock()
	var order []realtime.Kind
	if c.token != "" && (last == realtime.SSE || last == realtime.LongPoll) {
		order = append(order, last)
	}
	for _, k := range c.kinds {
		if !c.blocked[k] && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	if len(order) == 0 {
		return c.kinds // every one blocked: try them all again
	}
	return order
}

// backoff is the delay before reconnect attempt n (from 0): exponential
// with equal jitter, uniform in the upper half of min(MaxBackoff,
// MinBackoff·2ⁿ).
func (c *Conn) backoff(attempt int) time.Duration {
	d := c.o.MaxBackoff
	if attempt < 30 {
		d = min(c.o.MinBackoff<<attempt, c.o.MaxBackoff)
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2)
}

// sleep waits d unless the connection ends first.
func (c *Conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// finish ends the connection for good: ce, or the close Close asked for.
func (c *Conn) finish(ce *realtime.CloseError) {
	c.mu.Lock()
	if ce == nil || c.closing {
		ce = c.final
	}
	if ce == nil {
		ce = &realtime.CloseError{Code: realtime.CloseAbnormal, Reason: "connection lost"}
	}
	c.final = ce
	c.mu.Unlock()
	c.stopLife()
	c.cancel()
	<-c.sendDone
	if c.ownClient {
		c.client.CloseIdleConnections()
	}
	c.setState(Closed, c.Transport(), ce)
	close(c.done)
}

// setState records s and tells OnState, skipping repeats.
func (c *Conn) setState(s State, k realtime.Kind, err error) {
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.mu.Lock()
	if c.state == s {
		c.mu.Unlock()
		return
	}
	c.state = s
	c.mu.Unlock()
	c.notify(s, k, err)
}

func (c *Conn) notify(s State, k realtime.Kind, err error) {
	if c.o.OnState != nil {
		c.o.OnState(s, k, err)
	}
}

func (c *Conn) signalLocked() {
	c.gen++
	close(c.changed)
	c.changed = make(chan struct{})
}

// deliver hands an item to Receive, waiting while the inbox is full; the
// wait does not count as silence from the server.
func (c *Conn) deliver(ctx context.Context, wd *watchdog, it inItem) error {
	select {
	case c.inbox <- it:
		return nil
	default:
	}
	wd.pause()
	defer wd.resume()
	select {
	case c.inbox <- it:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// deliverSeq delivers a session message unless it was delivered already.
func (c *Conn) deliverSeq(ctx context.Context, wd *watchdog, seq uint64, m realtime.Message) error {
	c.mu.Lock()
	dup := seq != 0 && seq <= c.lastSeq
	c.mu.Unlock()
	if dup {
		return nil
	}
	if err := c.deliver(ctx, wd, inItem{m: m}); err != nil {
		return err
	}
	c.mu.Lock()
	if seq > c.lastSeq {
		c.lastSeq = seq
	}
	c.mu.Unlock()
	return nil
}

// session returns the current session token and last seq received.
func (c *Conn) session() (string, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.lastSeq
}

// newConnection records a new server connection: a WebSocket, or a
// session with token. After the first, the user hears of it as a gap.
func (c *Conn) newConnection(ctx context.Context, wd *watchdog, token string) error {
	c.mu.Lock()
	n := c.conns
	c.conns++
	c.token, c.lastSeq, c.nextSeq = token, 0, 1
	reason := c.gapReason
	c.gapReason = ""
	c.signalLocked()
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	if reason == "" {
		reason = "new connection"
	}
	return c.deliver(ctx, wd, inItem{err: &GapError{NewConnection: true, Reason: reason}})
}

func (c *Conn) setGapReason(r string) {
	c.mu.Lock()
	c.gapReason = r
	c.mu.Unlock()
}

// sendLoop writes queued messages, one at a time, on the current transport.
func (c *Conn) sendLoop() {
	defer c.wg.Done()
	defer close(c.sendDone)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for (len(c.outbox) == 0 || c.cur == nil || c.closing) && c.ctx.Err() == nil {
			c.waitLocked()
		}
		if c.ctx.Err() != nil {
			for _, it := range c.outbox {
				it.done <- realtime.ErrClosed
			}
			c.outbox = nil
			return
		}
		it, t, gen := c.outbox[0], c.cur, c.gen
		c.sending = true
		c.mu.Unlock()
		err := t.send(it)
		c.mu.Lock()
		c.sending = false
		if c.sentWait != nil {
			close(c.sentWait)
			c.sentWait = nil
		}
		var busy *busyError
		if errors.As(err, &busy) {
			c.log.Debug("rtclient: send paused", "after", busy.after)
			c.mu.Unlock()
			c.sleep(busy.after)
			c.mu.Lock()
			continue
		}
		var re *retryError
		if errors.As(err, &re) {
			c.log.Debug("rtclient: send deferred", "err", re.err)
			for c.gen == gen && c.ctx.Err() == nil {
				c.waitLocked()
			}
			continue
		}
		c.outbox[0] = nil
		c.outbox = c.outbox[1:]
		it.done <- err
		var refused *RefusedError
		if errors.As(err, &refused) && it.token == c.token && it.seq == c.nextSeq-1 {
			// The server accepted nothing: the next message takes this
			// seq, as a hole would hold every later one back.
			c.nextSeq--
		}
		if refused != nil && it.unheard.Load() {
			// No Send waits for the answer: Receive reports it.
			c.mu.Unlock()
			c.deliver(c.ctx, nil, inItem{err: refused})
			c.mu.Lock()
		}
	}
}

// waitLocked waits for a change of transport, session or queue.
func (c *Conn) waitLocked() {
	ch := c.changed
	c.mu.Unlock()
	select {
	case <-ch:
	case <-c.ctx.Done():
	}
	c.mu.Lock()
}

// Send sends m. While the connection is open it returns once the message
// is written (WebSocket) or accepted by the server (SSE, long-polling), or
// when ctx ends (the message then stays queued and may still be sent).
// While it is connecting or reconnecting, Send queues m and returns nil at
// once; m is sent after the reconnect. It returns ErrSendQueueFull when
// Options.SendQueue messages wait already, ErrTooLarge for a message over
// the route's read limit, and realtime.ErrClosed once the connection is
// closing. m.Data must not be modified until Send has returned nil while
// open, or, when queued, until the message is sent.
func (c *Conn) Send(ctx context.Context, m realtime.Message) error {
	if m.Type != realtime.TextMessage && m.Type != realtime.BinaryMessage {
		return fmt.Errorf("rtclient: invalid message type %d", int(m.Type))
	}
	if c.readLimit > 0 && int64(len(m.Data)) > c.readLimit {
		return ErrTooLarge
	}
	it := &outItem{m: m, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closing || c.state == Closed {
		c.mu.Unlock()
		return realtime.ErrClosed
	}
	if len(c.outbox) >= c.o.SendQueue {
		c.mu.Unlock()
		return ErrSendQueueFull
	}
	c.outbox = append(c.outbox, it)
	open := c.state == Open && c.cur != nil
	it.unheard.Store(!open)
	c.signalLocked()
	c.mu.Unlock()
	if !open {
		return nil
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		it.unheard.Store(true)
		select {
		case err := <-it.done: // answered meanwhile
			return err
		default:
		}
		return ctx.Err()
	}
}

// SendText sends s as a text message.
func (c *Conn) SendText(ctx context.Context, s string) error {
	return c.Send(ctx, realtime.Text(s))
}

// SendBinary sends b as a binary message.
func (c *Conn) SendBinary(ctx context.Context, b []byte) error {
	return c.Send(ctx, realtime.Binary(b))
}

// SendJSON sends the JSON encoding of v as a text message.
func (c *Conn) SendJSON(ctx context.Context, v any) error {
	m, err := realtime.JSON(v)
	if err != nil {
		return err
	}
	return c.Send(ctx, m)
}

// Receive returns the next message from the server, in order. It returns
// a *GapError (errors.Is(err, ErrGap)) when messages were or may have been
// lost; the connection goes on. Once the connection has closed for good
// and every message received before has been returned, it returns the
// *realtime.CloseError: the code the server sent, the one Close sent, or
// realtime.CloseAbnormal when reconnecting failed.
func (c *Conn) Receive(ctx context.Context) (realtime.Message, error) {
	select {
	case it := <-c.inbox:
		return it.m, it.err
	default:
	}
	select {
	case it := <-c.inbox:
		return it.m, it.err
	case <-c.done:
		select {
		case it := <-c.inbox:
			return it.m, it.err
		default:
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return realtime.Message{}, c.final
	case <-ctx.Done():
		return realtime.Message{}, ctx.Err()
	}
}

// Close closes the connection with code and reason and waits, at most a
// couple of seconds, for the server to acknowledge, then for every
// goroutine of the connection to end. A message being sent when Close is
// called is let finish first (its Send reports whether the server took
// it); messages still queued behind it are not sent: their Send returns
// realtime.ErrClosed. Receive then returns the
// *realtime.CloseError with code and reason. Close returns
// realtime.ErrClosed if the connection was closed already, and an error
// for a code a client may not send (such as 1006).
func (c *Conn) Close(code int, reason string) error {
	if !protocol.ValidCloseCode(code) {
		return fmt.Errorf("rtclient: invalid close code %d", code)
	}
	return c.closeFor(code, reason, nil)
}

// closeFor is Close, with cause as the final CloseError's Err.
func (c *Conn) closeFor(code int, reason string, cause error) error {
	c.mu.Lock()
	if c.closing || c.state == Closed {
		c.mu.Unlock()
		c.wg.Wait()
		return realtime.ErrClosed
	}
	c.closing = true
	c.final = &realtime.CloseError{Code: code, Reason: reason, Err: cause}
	var sent chan struct{}
	if c.sending {
		c.sentWait = make(chan struct{})
		sent = c.sentWait
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, closeTimeout)
	defer cancel()
	if sent != nil { // let the message on the wire be answered first
		select {
		case <-sent:
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	t, token := c.cur, c.token
	c.mu.Unlock()
	switch {
	case t != nil:
		t.close(ctx, code, reason)
		select { // the transport ends when the server confirms
		case <-c.loopDone:
		case <-ctx.Done():
		}
	case token != "":
		c.deleteSession(ctx, token, code, reason)
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// Done returns a channel that is closed when the connection has closed for
// good.
func (c *Conn) Done() <-chan struct{} { return c.done }

// State returns the connection's state.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Transport returns the transport in use, or the last one used.
func (c *Conn) Transport() realtime.Kind {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kindNow
}

// newRequest builds a request with Options.Header and the bearer token.
func (c *Conn) newRequest(ctx context.Context, method string, u *url.URL, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.o.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	return req, nil
}

// isRefusal reports a status that refuses the client's credentials or
// origin: the connection ends with 1008 rather than retry in vain.
func isRefusal(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}

// refusal is the close of a connection whose route refused it.
func refusal(resp *http.Response) error {
	se := statusError(resp).(*StatusError)
	return &realtime.CloseError{Code: realtime.ClosePolicyViolation, Reason: se.Error(), Err: se}
}

// statusError reads the start of a refusal's body.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}
