// Package inspect is a live page of what rtkit routes are doing, for
// operators: mounted like net/http/pprof, where the application wants it,
// and off unless mounted.
//
//	insp := inspect.New(&inspect.Options{
//		Routes: []inspect.Route{{Name: "/chat", Route: chat}},
//		Topics: []inspect.Topics{{Name: "rooms", Topics: rooms}},
//	})
//	defer insp.Shutdown(ctx)
//	admin.Handle("/debug/rtkit/", requireOperator(insp))
//
// The page lists each route's live connections, counted by transport,
// with each connection's age, send-queue depth, inbox, traffic and remote
// address (the longest queues first); each topic set's topics with their
// subscribers on this node and the history the broker keeps; and the
// cluster's nodes where the broker can list them (NodeLister). Neither
// the NATS nor the Redis broker can, so the page shows this node and
// says the others are unknown.
//
// The page is itself an rtkit client: it connects to the inspector's own
// route (SSE first, as transports.Dashboard) and receives a JSON
// Snapshot every Options.Every; "snapshot.json" under the same prefix
// answers one, for scripts.
//
// # Security
//
// The inspector shows connection ids, client addresses and topic names:
// mount it only behind authentication for operators, or on an address
// that only they reach (the examples' -debug-addr). It has no access
// control of its own. Its route accepts same-origin pages only, the
// core's default.
//
// The routes and topics shown are the values in Options, given
// explicitly: there is no global registry to forget to fill.
package inspect
