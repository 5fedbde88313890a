package harness

import (
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// Transport is the rtkit transport of kind k with its default options,
// for the tools that serve one transport picked by a flag.
func Transport(k realtime.Kind) realtime.Transport {
	switch k {
	case realtime.SSE:
		return sse.New(sse.Options{})
	case realtime.LongPoll:
		return longpoll.New(longpoll.Options{})
	case realtime.HTTP:
		return longpoll.NewRequestResponse()
	}
	return websocket.New(websocket.Options{})
}
