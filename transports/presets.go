package transports

import (
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	"github.com/rtkit/rtkit/transports/websocket"
)

// The presets, one per row of the seed's table. Each is a value: copy it
// before changing a field, as NewRoute does with what it is given.
var (
	// Messaging suits chat: bidirectional and latency-sensitive, so
	// WebSocket first, then SSE with POST-backs and long-polling for
	// networks that block upgrades or buffer streams.
	Messaging = realtime.Options{
		Transports: []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
	}

	// Collaboration suits shared editing and cursors: bursts in both
	// directions, so a deeper send queue and resume buffer and larger
	// messages (documents, patches) than the default.
	Collaboration = realtime.Options{
		Transports:   []realtime.Transport{websocket.New(websocket.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})},
		ReadLimit:    1 << 20,
		SendQueue:    1024,
		ResumeBuffer: 1024,
	}

	// Dashboard suits live figures pushed to many screens: SSE first
	// (plain HTTP, reconnects by itself), WebSocket and long-polling as
	// fallbacks; under pressure the oldest update is dropped rather than
	// the slow screen disconnected, since only the latest values matter.
	// Clients barely talk, so their messages are small.
	Dashboard = realtime.Options{
		Transports: []realtime.Transport{sse.New(sse.Options{}), websocket.New(websocket.Options{}), longpoll.New(longpoll.Options{})},
		Overflow:   realtime.OverflowDropOldest,
		ReadLimit:  4 << 10,
	}

	// Progress suits a long job reporting to one client: SSE first, with a
	// larger resume buffer so a reconnect replays every step it missed.
	Progress = realtime.Options{
		Transports:   []realtime.Transport{sse.New(sse.Options{}), longpoll.New(longpoll.Options{}), websocket.New(websocket.Options{})},
		ResumeBuffer: 1024,
		ReadLimit:    4 << 10,
	}

	// RequestResponse suits APIs: one POST runs Open, Message and Close
	// and answers with what the handler sent.
	RequestResponse = realtime.Options{
		Transports: []realtime.Transport{longpoll.NewRequestResponse()},
	}
)
