// Package wire is the API for writing a transport: what a package under
// transports/ uses to serve a route. Users never import it; they pass
// transport values (websocket.New, sse.New, ...) in
// realtime.Options.Transports.
//
// A transport is a realtime.Transport. Its Bind makes an Endpoint for the
// route and returns a realtime.TransportHandler, which the route asks, in
// the order of Options.Transports, whether it takes a request (Match) and
// then lets serve it:
//
//	func (t *Transport) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
//		return &server{ep: wire.NewEndpoint(rt, realtime.WebSocket)}, nil
//	}
//
// For each new connection the transport calls Endpoint.Accept, then one
// of Link.Start (a Reader, whose messages the core reads itself: the
// WebSocket transport), Link.Open (a Conn the transport feeds through
// Receive and ends with Closed: request/response, the in-memory pipe) or
// Link.OpenSession (a session made of requests, read through Attach:
// SSE, long-polling). Link.Abort gives back a connection whose handshake
// failed. The wire protocol the transports of this module speak is in
// transports/PROTOCOL.md.
package wire
