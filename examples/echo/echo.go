package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Agent answers one message. The seed's example calls an AI agent here; any
// function that can fail will do.
type Agent func(ctx context.Context, text string) (string, error)

// echoAgent repeats what it was told. It refuses empty messages, so the
// page can show the error path.
func echoAgent(_ context.Context, text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errors.New("nothing to echo")
	}
	return "echo: " + text, nil
}

// reply is every message the server sends, told apart by Type.
type reply struct {
	Type  string    `json:"type"` // "echo", "heartbeat" or "error"
	Text  string    `json:"text,omitempty"`
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time,omitzero"` // omitempty would keep a zero time
}

// heartbeatEvery is how often a connection gets a heartbeat.
const heartbeatEvery = 5 * time.Second

// newEcho returns the seed's echo handler: every message goes through the
// agent and its answer comes back; a failure comes back as an error reply
// and the connection stays open; a heartbeat arrives every five seconds.
// The heartbeat needs no cleanup: it stops with the connection.
func newEcho(agent Agent) realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			c.Logger().Info("echo: open")
			c.Every(heartbeatEvery, func() {
				c.SendJSON(reply{Type: "heartbeat", Time: time.Now().UTC()})
			})
			return nil
		},
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			out, err := agent(c.Context(), m.Text())
			if err != nil {
				return c.SendJSON(reply{Type: "error", Error: err.Error()})
			}
			return c.SendJSON(reply{Type: "echo", Text: out})
		},
		OnClose: func(c *realtime.Conn, err error) {
			c.Logger().Info("echo: closed", "code", realtime.CloseStatus(err))
		},
	}
}
