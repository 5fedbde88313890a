package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// command is what the page sends: join a conversation (conv "" asks the
// server for a new one), resuming its topic after the last seq it saw (0
// replays it all); ask a question in a conversation; or stop its answer.
//
//	{"join": true, "conv": "", "after": 0}
//	{"ask": "why is the sky blue?", "conv": "…"}
//	{"stop": true, "conv": "…"}
type command struct {
	Join  bool   `json:"join,omitempty"`
	Conv  string `json:"conv,omitempty"`
	After uint64 `json:"after,omitempty"`
	Ask   string `json:"ask,omitempty"`
	Stop  bool   `json:"stop,omitempty"`
}

// joined tells the page which conversation it watches.
type joined struct {
	Conv string `json:"conv"`
}

// problem is sent back for a command the handler refuses; the connection
// stays open.
type problem struct {
	Error string `json:"error"`
}

const maxPrompt = 2000

// agent serves the conversations: the handler only records commands and
// who watches what; the answers run in the registry.
type agent struct {
	topics *topics.Topics
	convs  *conversations
	// opened counts the connections opened (tests read it).
	opened atomic.Int64
}

// handler returns the handler of the /agent route. Its callbacks return
// at once: an answer runs in the registry, so that a Stop sent while it
// streams is handled as soon as it arrives (a connection's callbacks never
// overlap, so an answer awaited in OnMessage would hold the Stop back).
func (a *agent) handler() realtime.Handler {
	return realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		var conv string    // the conversation this connection watches
		var unwatch func() // ends the watch; called on close
		return realtime.Funcs{
			OnOpen: func(c *realtime.Conn) error {
				a.opened.Add(1)
				return nil
			},
			OnMessage: func(c *realtime.Conn, m realtime.Message) error {
				var cmd command
				if err := m.Decode(&cmd); err != nil {
					return c.SendJSON(problem{Error: "malformed command"})
				}
				switch {
				case cmd.Join:
					id := cmd.Conv
					if id == "" {
						id = newConvID()
					} else if !validConvID(id) {
						return c.SendJSON(problem{Error: "bad conversation id"})
					}
					if unwatch != nil { // a join replaces the previous one
						unwatch()
						a.topics.Unsubscribe(c, topicOf(conv))
					}
					if err := c.SendJSON(joined{Conv: id}); err != nil {
						return err
					}
					if err := a.topics.Resume(c, topicOf(id), cmd.After); err != nil {
						c.Logger().Warn("agent: join failed", "err", err)
						conv, unwatch = "", nil
						return c.SendJSON(problem{Error: "could not join the conversation, reload to try again"})
					}
					conv, unwatch = id, a.convs.watch(id)
					return nil
				case cmd.Ask != "":
					if !validConvID(cmd.Conv) {
						return c.SendJSON(problem{Error: "bad conversation id"})
					}
					prompt := strings.TrimSpace(cmd.Ask)
					if prompt == "" || utf8.RuneCountInString(prompt) > maxPrompt {
						return c.SendJSON(problem{Error: "a prompt has 1 to 2000 characters"})
					}
					if err := a.convs.ask(cmd.Conv, prompt); err != nil {
						if !errors.Is(err, errBusy) {
							err = errors.New("the server is shutting down")
						}
						return c.SendJSON(problem{Error: err.Error()})
					}
					return nil
				case cmd.Stop:
					if !validConvID(cmd.Conv) {
						return c.SendJSON(problem{Error: "bad conversation id"})
					}
					if !a.convs.stop(cmd.Conv) {
						return c.SendJSON(problem{Error: "no answer is running"})
					}
					return nil
				}
				return c.SendJSON(problem{Error: "unknown command"})
			},
			OnClose: func(c *realtime.Conn, err error) {
				if unwatch != nil {
					unwatch() // the topic subscription ends with the connection
				}
			},
		}
	})
}

// newConvID returns a new conversation id: 128 random bits in hex. Knowing
// it is what lets a page watch the conversation.
func newConvID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validConvID reports whether s has the form newConvID makes.
func validConvID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
