// Package longpoll is rtkit's plain-HTTP transports, for clients that can
// hold neither a socket nor a stream: long-polling sessions
// (New, realtime.LongPoll) and one-shot request/response
// (NewRequestResponse, realtime.HTTP). List them in a route's transports:
//
//	o := realtime.Options{Transports: []realtime.Transport{
//		websocket.New(websocket.Options{}),
//		longpoll.New(longpoll.Options{}), // for proxies that buffer streams
//	}}
//
// It is not named http, which would clash with net/http in user code.
//
// # Long-polling
//
// POST ?transport=longpoll opens a session and answers
// {"id", "token", "transport"}. GET ?transport=longpoll with the token in
// the Realtime-Token header and the highest sequence number received so far
// in Realtime-Ack holds until messages after it exist, the connection
// closes, or Options.Hold passes (the route's PingInterval by default),
// and answers
// {"messages": [{"seq", "type", "data"}], "gap": {"after"}, "close":
// {"code", "reason"}}. Repeating a poll with the same ack returns the same
// messages, so a lost response loses nothing; a second poll while one is
// held gets 409 Conflict, so a replayed request cannot steal another
// client's messages. Messages go up by POST with the token, and DELETE
// closes, exactly as for SSE (see package sse). A session left without a
// poll for ResumeWindow closes. It is the last fallback, for proxies that
// buffer streaming responses.
//
// # Request/response
//
// A POST without a token runs the handler's Open, then Message with the
// request body (application/octet-stream: binary; otherwise text), then
// Close. What the handler sent before Message returned is the response: one
// message as the body (text/plain or application/octet-stream), or, when
// the request accepts application/json or there are several, a JSON array
// of {"type", "data"}; no message gives 204. A handler error answers 500,
// a body over the read limit 413.
package longpoll
