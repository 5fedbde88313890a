package main

import (
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// defaultEvery is how often a connection gets a notification.
const defaultEvery = 3 * time.Second

// notification is the one event type the server sends. A typed envelope
// ("type") lets a page add other events later without guessing.
type notification struct {
	Type  string    `json:"type"` // always "notification"
	ID    int       `json:"id"`   // 1, 2, 3, ... per connection
	Title string    `json:"title"`
	Time  time.Time `json:"time"`
}

var titles = []string{
	"Build passed",
	"New comment on your pull request",
	"Deploy finished",
	"Disk usage above 80%",
	"Weekly report is ready",
}

// newNotifier returns a handler that pushes a notification to each
// connection every interval, stamped with now(). The numbering is
// per-connection state, so the handler is built per connection.
//
// There is nothing to clean up: the ticker started by Every stops when
// the connection closes, whoever closes it, so the handler needs no Close.
func newNotifier(every time.Duration, now func() time.Time) realtime.Handler {
	return realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		n := 0 // touched only by Every's callback: callbacks never overlap
		return realtime.Funcs{
			OnOpen: func(c *realtime.Conn) error {
				c.Every(every, func() {
					n++
					c.SendJSON(notification{
						Type:  "notification",
						ID:    n,
						Title: titles[(n-1)%len(titles)],
						Time:  now().UTC(),
					})
				})
				return nil
			},
		}
	})
}
