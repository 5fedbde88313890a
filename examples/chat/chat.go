package main

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// command is what a client sends: join a room (resuming after the last
// seq it saw, 0 for the whole kept history), leave it, or say something.
type command struct {
	Join  string `json:"join,omitempty"`
	After uint64 `json:"after,omitempty"`
	Leave string `json:"leave,omitempty"`
	Room  string `json:"room,omitempty"`
	Text  string `json:"text,omitempty"`
}

// post is a chat message as published on a room's topic.
type post struct {
	From string    `json:"from"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// problem is sent back for a command the handler refuses; the connection
// stays open.
type problem struct {
	Error string `json:"error"`
}

const maxText = 2000

// newChat returns the chat handler. Rooms are topics named "room:<name>":
// joining resumes the room's history, hands the joiner the room's
// presence state and enters the presence (everyone there gets the join in
// the next presence diff, and the leave when the connection goes);
// a message is published once and fanned out to every member on every
// node that shares the broker.
func newChat(ts *topics.Topics) realtime.Handler {
	return realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			var cmd command
			if err := m.Decode(&cmd); err != nil {
				return c.SendJSON(problem{Error: "malformed command"})
			}
			switch {
			case cmd.Join != "":
				if !validRoom(cmd.Join) {
					return c.SendJSON(problem{Error: "bad room name"})
				}
				return ts.Join(c, topicOf(cmd.Join), cmd.After, map[string]string{"name": userOf(c)})
			case cmd.Leave != "":
				ts.Unsubscribe(c, topicOf(cmd.Leave))
				return nil
			case cmd.Room != "":
				text := strings.TrimSpace(cmd.Text)
				if text == "" || utf8.RuneCountInString(text) > maxText {
					return c.SendJSON(problem{Error: "a message has 1 to 2000 characters"})
				}
				b, _ := json.Marshal(post{From: userOf(c), Text: text, Time: time.Now().UTC()})
				if _, err := ts.Publish(c.Context(), topicOf(cmd.Room), realtime.Text(string(b))); err != nil {
					c.Logger().Warn("chat: publish failed", "err", err)
					return c.SendJSON(problem{Error: "message not sent, try again"})
				}
				return nil
			}
			return c.SendJSON(problem{Error: "unknown command"})
		},
	}
}

func topicOf(room string) string { return "room:" + room }

func validRoom(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
