package realtimetest

import (
	"context"
	"errors"

	"github.com/rtkit/rtkit/realtime"
)

// Recorder is what Run observed of one connection, in plain fields.
type Recorder struct {
	// Sent holds the messages the handler sent, in order.
	Sent []realtime.Message
	// Code and Reason are the close the client saw.
	Code   int
	Reason string
	// Err is the cause the handler's Close received.
	Err error
}

// Texts returns the sent messages as strings.
func (r *Recorder) Texts() []string {
	out := make([]string, len(r.Sent))
	for i, m := range r.Sent {
		out[i] = string(m.Data)
	}
	return out
}

// Run drives h through one whole connection: Open, a Message for each of
// in, and Close. If the handler has not closed the connection by then, the
// client closes it with realtime.CloseNormal. Run returns when the
// handler's Close has returned. Its error is non-nil only if the route
// refused the connection.
func Run(h realtime.Handler, o *realtime.Options, in ...realtime.Message) (*Recorder, error) {
	c, err := Dial(h, o)
	if err != nil {
		return nil, err
	}
	for _, m := range in {
		if c.Send(m) != nil {
			break
		}
	}
	// Send returns once the handler has processed the message: a close
	// it (or the core) started meanwhile is the connection's cause already,
	// though the client may not have seen it yet.
	if c.CloseError() == nil && c.Conn().Cause() == nil {
		c.Close(realtime.CloseNormal, "")
	}
	<-c.Done()
	rec := &Recorder{Err: c.Conn().Cause()}
	for {
		m, err := c.Receive(context.Background())
		var ce *realtime.CloseError
		if errors.As(err, &ce) {
			rec.Code, rec.Reason = ce.Code, ce.Reason
			return rec, nil
		}
		rec.Sent = append(rec.Sent, m)
	}
}
