package main

import (
	"fmt"
	"strings"

	"github.com/rtkit/rtkit/realtime/topics"
)

// openBroker returns the broker a URL names: "" or "memory" for the
// in-process one; nats:// and redis:// for a cluster.
func openBroker(url string, s settings) (topics.Broker, func(), error) {
	switch {
	case url == "" || url == "memory":
		b := topics.NewMemoryBroker(&topics.MemoryOptions{History: s.history})
		return b, func() { b.Close() }, nil
	case strings.HasPrefix(url, "nats://"):
		return openNATS(url, s)
	case strings.HasPrefix(url, "redis://"):
		return openRedis(url, s)
	}
	return nil, nil, fmt.Errorf("chat: unknown broker %q: want memory, nats://host:port or redis://host:port", url)
}
