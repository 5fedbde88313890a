// Package sse is rtkit's Server-Sent Events transport. List it in a
// route's transports:
//
//	o := realtime.Options{Transports: []realtime.Transport{
//		websocket.New(websocket.Options{}),
//		sse.New(sse.Options{}), // for networks that refuse the upgrade
//	}}
//
// A GET with "Accept: text/event-stream" (what EventSource sends) or
// "?transport=sse" opens a stream. Its first event, "session", hands the
// client the public connection id and, separately, a secret session token
// (128 bits from crypto/rand) bound to the stream's origin and to the
// identity that Options.Identity reads. The client sends messages by POST
// to the same URL with the token in the Realtime-Token header (never in the
// URL, which ends up in logs); the core delivers them to the handler's
// Message exactly as over WebSocket, in order (Realtime-Seq numbers them).
// DELETE with the token closes the connection.
//
// Every message event carries the id "<token>.<seq>". When the stream
// drops, EventSource reconnects with that id in Last-Event-ID and receives
// what it missed from the session's bounded backlog (Options.ResumeBuffer),
// in order and exactly once; if the backlog no longer reaches back, a "gap"
// event says so first. The connection itself survives a dropped stream for
// Options.ResumeWindow, so the handler does not see the blip. Binary
// messages travel as "binary" events in base64; the close code and reason
// arrive in a "close" event, after which the client must not reconnect.
// The stream sends "retry: 2000" and a ": ping" comment every PingInterval
// so that proxies do not idle it out, and each write has a deadline of
// WriteTimeout. The wire format is in transports/PROTOCOL.md.
//
// Over HTTP/1.1 a stream takes its connection over from net/http (as a
// WebSocket upgrade does): the response goes out as net/http would write
// it (chunked, so that clients tell a dropped stream from an ended one),
// with the headers set on the ResponseWriter (middleware's included) and
// "Connection: close", and it is served by a small goroutine of the
// transport's plus one blocked in a read that notices at once when the
// client goes. net/http's goroutine,
// its grown stack and its buffers are let go: an idle stream costs about
// half the memory. HTTP/2 streams and ResponseWriters that cannot hijack
// (a compressing middleware's, say) are served through net/http.
// http.Server.Shutdown does not end taken-over streams; the route's
// Shutdown does.
//
// # Why not the server of r3labs/sse
//
// github.com/r3labs/sse/v2 (v2.10.0, no commits since January 2023) has a
// server built for shared, client-named streams, which does not fit a
// per-connection handler: any client that knows a ?stream= name can attach
// to it; AutoReplay is on by default with an unbounded event log (#169)
// that rewrites event ids and replays the last seen event twice; Publish
// blocks when one subscriber stops reading; RemoveStream and Unsubscribe
// leak goroutines (the fix, PR #178, is unmerged); disconnects are noticed
// late (#102); data with newlines is written raw, so "x\nevent: evil"
// injects a field; EventTTL drops every event without AutoReplay (PR #176).
// So this package owns the server side: a small WHATWG-correct encoder
// (AppendEvent, which splits data on CR, LF and CRLF and rejects CR, LF
// and NUL in ids and types), a spec-conformant Reader, and one writer per
// stream with deadlines and bounded replay. r3labs/sse/v2's client, which
// many Go services use, is exercised against this server in the interop
// tests.
package sse
