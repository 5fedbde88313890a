package realtime

import (
	"errors"
	"fmt"
)

// Errors that callers branch on.
var (
	// ErrClosed is returned by Send and Close on a connection that is
	// closing or closed.
	ErrClosed = errors.New("realtime: connection closed")
	// ErrQueueFull is the cause of a close under OverflowClose, and what
	// Send returns under OverflowDropNewest or OverflowBlock when the send
	// queue stays full.
	ErrQueueFull = errors.New("realtime: send queue full")
	// ErrReadLimit is the cause of a close when the peer sent a message
	// larger than Options.ReadLimit.
	ErrReadLimit = errors.New("realtime: message exceeds read limit")
	// ErrPingTimeout is the cause of a close when the peer did not answer a
	// ping in time.
	ErrPingTimeout = errors.New("realtime: ping timeout")
	// ErrWriteTimeout is the cause of a close when a write did not finish
	// within Options.WriteTimeout.
	ErrWriteTimeout = errors.New("realtime: write timeout")
	// ErrServerClosed is the cause of a close made by Route.Shutdown or
	// Server.Shutdown, and what a shut-down route answers new requests with.
	ErrServerClosed = errors.New("realtime: server closed")
	// ErrTooManyConns is returned when the route already holds
	// Options.MaxConns connections.
	ErrTooManyConns = errors.New("realtime: too many connections")
	// ErrClientLimit is returned when the client already holds
	// Options.MaxConnsPerClient connections on the route.
	ErrClientLimit = errors.New("realtime: too many connections from this client")
	// ErrHandlerPanic is wrapped by the cause of a close after a handler
	// panicked; the *PanicError carries the value and stack.
	ErrHandlerPanic = errors.New("realtime: handler panic")
	// ErrMalformed is wrapped by Message.Decode errors.
	ErrMalformed = errors.New("realtime: malformed message")
	// ErrOrigin is returned when a request's Origin is not allowed.
	ErrOrigin = errors.New("realtime: origin not allowed")
	// ErrResumeTimeout is the cause of a close when no transport resumed a
	// session within Options.ResumeWindow.
	ErrResumeTimeout = errors.New("realtime: session not resumed in time")
	// ErrUnknownNode is returned by Relay.Request when no node serves the
	// address.
	ErrUnknownNode = errors.New("realtime: no such node")
)

// Close codes, as in RFC 6455 section 7.4.1. Every transport carries them:
// WebSocket in its close frame, the others in their close event.
const (
	CloseNormal          = 1000 // the purpose of the connection was fulfilled
	CloseGoingAway       = 1001 // server shutdown or page navigation
	CloseProtocolError   = 1002
	CloseUnsupported     = 1003
	CloseNoStatus        = 1005 // received without a status code
	CloseAbnormal        = 1006 // dropped without a close frame; never sent
	CloseInvalidData     = 1007
	ClosePolicyViolation = 1008 // also a slow consumer whose queue overflowed
	CloseTooBig          = 1009 // message over the read limit
	CloseInternalError   = 1011 // handler error or panic
	CloseTryAgainLater   = 1013
)

// CloseError says how a connection ended: the close code and reason that
// were sent or received, and the underlying cause when there is one.
// Handler.Close always receives an error for which CloseStatus works.
type CloseError struct {
	Code   int    // close code; CloseAbnormal when the connection dropped
	Reason string // human-readable, at most 123 bytes on the wire
	Err    error  // the cause (ErrPingTimeout, a handler error, ...), or nil
}

// Error implements error.
func (e *CloseError) Error() string {
	s := fmt.Sprintf("realtime: closed with code %d", e.Code)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *CloseError) Unwrap() error { return e.Err }

// CloseStatus returns the close code carried by err, or -1 when err holds no
// *CloseError.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// PanicError is the cause recorded when a handler callback panics.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("realtime: handler panic: %v", e.Value) }

// Unwrap makes errors.Is(err, ErrHandlerPanic) true.
func (e *PanicError) Unwrap() error { return ErrHandlerPanic }
