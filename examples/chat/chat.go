package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
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
// node that shares the broker. A join that fails (the broker is down) is
// tried again in the background until it works, the client leaves the
// room or the connection ends: the client is told, and its connection
// stays open.
func newChat(ts *topics.Topics) realtime.Handler {
	return realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		j := &joiner{ts: ts, retrying: map[string]context.CancelFunc{}}
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
					return j.join(c, topicOf(cmd.Join), cmd.After)
				case cmd.Leave != "":
					j.stop(topicOf(cmd.Leave))
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
	})
}

// joiner joins one connection's rooms, trying again in the background
// while the broker is down. mu guards retrying, which the callbacks and
// the retrying goroutines (Conn.Go) share, and is held across a retried
// Join, so that stop returns only once no retry can join any more.
type joiner struct {
	ts       *topics.Topics
	mu       sync.Mutex
	retrying map[string]context.CancelFunc // topic -> stops its retry
}

// join joins topic after the seq after, or starts trying again.
func (j *joiner) join(c *realtime.Conn, topic string, after uint64) error {
	j.stop(topic) // a new join replaces one being retried
	info := map[string]string{"name": userOf(c)}
	err := j.ts.Join(c, topic, after, info)
	if err == nil || c.Context().Err() != nil {
		return nil
	}
	c.Logger().Warn("chat: join failed; trying again", "topic", topic, "err", err)
	ctx, cancel := context.WithCancel(c.Context())
	j.mu.Lock()
	j.retrying[topic] = cancel
	j.mu.Unlock()
	c.Go(func(context.Context) error {
		defer cancel()
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			// Under mu, so that a Leave (stop, then Unsubscribe) comes
			// after a join that was under way, never before it.
			j.mu.Lock()
			done := ctx.Err() != nil || j.ts.Join(c, topic, after, info) == nil
			if done && ctx.Err() == nil {
				delete(j.retrying, topic)
			}
			j.mu.Unlock()
			if done {
				return nil
			}
		}
	})
	return c.SendJSON(problem{Error: "joining the room as soon as the server can"})
}

// stop ends the retry of topic's join, if one runs.
func (j *joiner) stop(topic string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if cancel := j.retrying[topic]; cancel != nil {
		cancel()
		delete(j.retrying, topic)
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
