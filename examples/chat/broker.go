package main

import (
	"fmt"
	"strings"

	"github.com/rtkit/rtkit/realtime/topics"
)

// openBroker returns the broker a URL names: "" or "memory" for the
// in-process one; nats:// and redis:// for a cluster.
func openBroker(url string) (topics.Broker, func(), error) {
	switch {
	case url == "" || url == "memory":
		b := topics.NewMemoryBroker(nil)
		return b, func() { b.Close() }, nil
	case strings.HasPrefix(url, "nats://"):
		return openNATS(url)
	case strings.HasPrefix(url, "redis://"):
		return openRedis(url)
	}
	return nil, nil, fmt.Errorf("chat: unknown broker %q: want memory, nats://host:port or redis://host:port", url)
}
