package realtime

// Presets for the seed's use-case table ("When to use WebSockets"). Each is
// an Options value: copy it and override any field.
//
//	o := realtime.Dashboard
//	o.AllowedOrigins = []string{"https://admin.example.com"}
//	route := realtime.NewRoute(h, &o)
//
// The order of Transports is the order clients try them; the route accepts
// every listed transport whatever order a client uses.
var (
	// Messaging suits chat: bidirectional and latency-sensitive, so
	// WebSocket first, then SSE with POST-backs and long-polling for
	// networks that block upgrades or buffer streams.
	Messaging = Options{
		Transports: []Kind{WebSocket, SSE, LongPoll},
	}

	// Collaboration suits shared editing and cursors: bursts in both
	// directions, so a deeper send queue and resume buffer and larger
	// messages (documents, patches) than the default.
	Collaboration = Options{
		Transports:   []Kind{WebSocket, SSE, LongPoll},
		ReadLimit:    1 << 20,
		SendQueue:    1024,
		ResumeBuffer: 1024,
	}

	// Dashboard suits live figures pushed to many screens: SSE first
	// (plain HTTP, reconnects by itself), WebSocket and long-polling as
	// fallbacks; under pressure the oldest update is dropped rather than
	// the slow screen disconnected, since only the latest values matter.
	// Clients barely talk, so their messages are small.
	Dashboard = Options{
		Transports: []Kind{SSE, WebSocket, LongPoll},
		Overflow:   OverflowDropOldest,
		ReadLimit:  4 << 10,
	}

	// Progress suits a long job reporting to one client: SSE first, with a
	// larger resume buffer so a reconnect replays every step it missed.
	Progress = Options{
		Transports:   []Kind{SSE, LongPoll, WebSocket},
		ResumeBuffer: 1024,
		ReadLimit:    4 << 10,
	}

	// RequestResponse suits APIs: one POST runs Open, Message and Close
	// and answers with what the handler sent.
	RequestResponse = Options{
		Transports: []Kind{HTTP},
	}
)
