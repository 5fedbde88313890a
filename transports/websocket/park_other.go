//go:build !linux

package websocket

import "time"

// poller is Linux's (park_linux.go); elsewhere a connection never parks
// and keeps its goroutine while idle.
type poller struct{ after time.Duration }

func (*poller) delay() time.Duration { return parkAfter }

func (*poller) park(*idleReader, func()) bool { return false }

func (*poller) shut(*idleReader) {}
