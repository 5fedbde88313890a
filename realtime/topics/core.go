package topics

import (
	"context"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/bridge"
)

// coreAPI lists the core's entry points this package uses (see package
// bridge): what a connection offers the topics that fan out to it.
type coreAPI interface {
	ConnOptions(c *realtime.Conn) *realtime.Options
	// OnClose runs f once c has closed, after the handler's Close.
	OnClose(c *realtime.Conn, f func()) (remove func())
	// SendLive queues live messages under c's overflow policy, except
	// that it never waits for the slow connection, and has them written
	// together. It returns how many were queued.
	SendLive(c *realtime.Conn, msgs []realtime.Message) (int, error)
	// SendPaced queues msgs once c has room, at the pace its peer reads.
	SendPaced(c *realtime.Conn, ctx context.Context, msgs []realtime.Message) error
	// Observe reports an event about c through its route's Observer.
	Observe(c *realtime.Conn, e realtime.Event)
}

var core = bridge.Core.(coreAPI)
