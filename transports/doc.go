// Package transports holds the presets for the seed's use-case table
// ("When to use WebSockets"): realtime.Options values whose Transports
// are this module's transports in the order clients should try them, and
// whose other fields suit the use case. Copy one and change any field:
//
//	o := transports.Dashboard
//	o.AllowedOrigins = []string{"https://admin.example.com"}
//	http.Handle("/figures", realtime.NewRoute(h, &o))
//
// A copy shares the preset's Transports slice: give a copy a slice of its
// own (o.Transports = append([]realtime.Transport{...}, ...)) rather than
// assigning to an element, which would change the preset itself.
//
// The transports themselves are the packages below this one, each with
// its own options, for routes that need something else:
// transports/websocket, transports/sse and transports/longpoll. The route
// accepts every listed transport whatever order a client uses. The wire
// protocol they speak is in PROTOCOL.md, next to this file.
package transports
