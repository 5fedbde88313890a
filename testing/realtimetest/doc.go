// Package realtimetest tests realtime handlers the way net/http/httptest
// tests http.Handlers: in memory, with no network, and deterministically.
//
//   - Dial connects a Client to a handler through an in-memory pipe that
//     keeps WebSocket's semantics (messages in order, close codes, the read
//     limit). Client.Send returns when the handler's Message has returned
//     and what it sent is ready to Receive.
//   - Run is the short form: it opens a connection, sends messages, closes
//     it and returns a Recorder with what the handler sent and how it closed.
//   - Clock is a fake realtime.Clock: Advance moves time and runs the timers
//     that fall due, so a five-second heartbeat is tested in microseconds.
//   - NewServer runs a handler over the real transports on a loopback port,
//     like httptest.NewServer, for tests that need real sockets.
package realtimetest
