package realtime

// Handler serves the connections of one route, whatever their transport.
//
// For each connection the core calls Open once, then Message once per
// message the peer sent, in order, then Close exactly once, on every path:
// a close by either side, a dropped network, a ping timeout, an oversized
// message, a handler error or panic, a full send queue, or a server
// shutdown. Close is called even when Open returned an error.
//
// Calls for one connection never overlap, and they never overlap with the
// callbacks of Conn.Every either: per-connection state needs no lock when
// only these callbacks touch it. Calls for different connections run
// concurrently.
//
// Open and Message may return an error to close the connection. A
// *CloseError chooses the close code and reason the peer sees; any other
// error closes with CloseInternalError and the reason "internal error", so
// internal details do not leak to clients, and is logged. A panic is
// recovered, logged with its stack, and closes only that connection the
// same way. Close receives the cause, which CloseStatus and errors.Is read.
//
// Handlers must not keep the *Conn after Close returns; its Send returns
// ErrClosed by then.
type Handler interface {
	Open(c *Conn) error
	Message(c *Conn, m Message) error
	Close(c *Conn, err error)
}

// Funcs adapts optional callbacks to a Handler, like the seed's
// onOpen/onMessage/onClose. A nil field is a no-op.
type Funcs struct {
	OnOpen    func(c *Conn) error
	OnMessage func(c *Conn, m Message) error
	OnClose   func(c *Conn, err error)
}

var _ Handler = Funcs{}

// Open calls f.OnOpen if it is set.
func (f Funcs) Open(c *Conn) error {
	if f.OnOpen == nil {
		return nil
	}
	return f.OnOpen(c)
}

// Message calls f.OnMessage if it is set.
func (f Funcs) Message(c *Conn, m Message) error {
	if f.OnMessage == nil {
		return nil
	}
	return f.OnMessage(c, m)
}

// Close calls f.OnClose if it is set.
func (f Funcs) Close(c *Conn, err error) {
	if f.OnClose != nil {
		f.OnClose(c, err)
	}
}

// PerConn is a Handler that builds a new Handler for every connection, so
// per-connection state lives in a closure, as in the seed's
// (c) => (ws) => {...}. The function runs when the connection opens, before
// its Open; a nil result serves the connection with no callbacks.
type PerConn func(c *Conn) Handler

var _ Handler = PerConn(nil)

// Open builds the connection's handler and calls its Open.
func (f PerConn) Open(c *Conn) error {
	h := f(c)
	if h == nil {
		h = Funcs{}
	}
	c.inner = h
	return h.Open(c)
}

// Message calls the connection's handler.
func (f PerConn) Message(c *Conn, m Message) error {
	if c.inner == nil {
		return nil
	}
	return c.inner.Message(c, m)
}

// Close calls the connection's handler.
func (f PerConn) Close(c *Conn, err error) {
	if c.inner != nil {
		c.inner.Close(c, err)
	}
}
