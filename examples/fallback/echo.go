package main

// A copy of examples/echo's handler (a main package cannot be imported).

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Agent answers one message.
type Agent func(ctx context.Context, text string) (string, error)

// echoAgent repeats what it was told and refuses empty messages.
func echoAgent(_ context.Context, text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errors.New("nothing to echo")
	}
	return "echo: " + text, nil
}

// reply is every message the server sends, told apart by Type.
type reply struct {
	Type      string    `json:"type"` // "echo", "heartbeat" or "error"
	Text      string    `json:"text,omitempty"`
	Error     string    `json:"error,omitempty"`
	Transport string    `json:"transport,omitempty"` // the server's view of the connection
	Time      time.Time `json:"time,omitempty"`
}

// heartbeatEvery is how often a connection gets a heartbeat.
const heartbeatEvery = 5 * time.Second

// newEcho returns the echo handler: answers through the agent, errors as
// error replies, a heartbeat every five seconds that stops by itself with
// the connection. Replies say which transport the server sees.
func newEcho(agent Agent) realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			c.Every(heartbeatEvery, func() {
				c.SendJSON(reply{Type: "heartbeat", Transport: string(c.Transport()), Time: time.Now().UTC()})
			})
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			out, err := agent(c.Context(), m.Text())
			if err != nil {
				return c.SendJSON(reply{Type: "error", Error: err.Error()})
			}
			return c.SendJSON(reply{Type: "echo", Text: out, Transport: string(c.Transport())})
		},
	}
}
