// Package conformance holds the suite that runs the same handlers over
// every transport (in memory, WebSocket, SSE, long-polling and
// request/response) and asserts that they behave alike: open, message and
// close order, close exactly once with the same codes, handler errors and
// panics, limits, origin checks, resume without loss, and refusal of
// misused session tokens. It has no code of its own besides its tests.
package conformance
