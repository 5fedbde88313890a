package realtime

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// Kind names a transport.
type Kind string

// The transports. Each is implemented by a package under transports/ that
// registers itself when imported.
const (
	WebSocket Kind = "websocket" // transports/websocket
	SSE       Kind = "sse"       // transports/sse: server-sent events, messages up by POST
	LongPoll  Kind = "longpoll"  // transports/longpoll: held GETs, messages up by POST
	HTTP      Kind = "http"      // transports/longpoll: one POST, one response
	Memory    Kind = "memory"    // testing/realtimetest: no network
)

// Transport is the contract between the core and a transport package. Users
// do not call it; they import the transport's package and list its Kind in
// Options.Transports.
type Transport interface {
	// Kind names the transport.
	Kind() Kind
	// Handler returns the transport's server for one route. It is called
	// once per route, and the result serves every request the route hands
	// it, concurrently.
	Handler(ep *Endpoint) TransportHandler
}

// TransportHandler is a transport's server for one route.
type TransportHandler interface {
	// Match reports whether r is meant for this transport. The route asks
	// its transports in the order of Options.Transports and serves r with
	// the first that matches.
	Match(r *http.Request) bool
	http.Handler
}

// Wire is the transport's side of one connection, used by the core.
//
// Write is called by one goroutine at a time. Close may be called
// concurrently with Write and Read, and more than once; the first call wins.
type Wire interface {
	// Write sends msgs to the peer in order, within Options.WriteTimeout.
	// An error ends the connection.
	Write(msgs []Message) error
	// Close tells the peer the close code and reason when the protocol can
	// and ends the wire within a bounded time, so that Read returns an
	// error (or, for wires the core does not read, Link.Closed is
	// called). After the read loop has ended the core calls Close once
	// more: then Close must release the wire at once, so that blocked
	// writes return.
	Close(code int, reason string) error
}

// Reader is a Wire whose peer's messages arrive on the same connection
// (WebSocket). The core reads it itself (see Link.Start), so that it can
// go on reading while a callback is slow.
type Reader interface {
	Wire
	// Read blocks until the peer's next message and returns it, or
	// returns the error that ended the wire: a *CloseError from the peer,
	// ErrPingTimeout, ErrReadLimit or a network error. Calls never
	// overlap, but successive calls may come from different goroutines.
	//
	// The core stops calling Read while the handler's inbox is full (the
	// server is then the slow side, and TCP pushes back on the peer).
	// Wires that check the peer's liveness must count only the time spent
	// inside Read, so that such a pause never fails the peer's keepalive.
	Read() (Message, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[Kind]Transport{}
)

// Register makes a transport available to routes. Transport packages call it
// from init. Registering a kind twice panics, as database/sql.Register does:
// it is a programming error.
func Register(t Transport) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[t.Kind()]; dup {
		panic(fmt.Sprintf("realtime: transport %q registered twice", t.Kind()))
	}
	registry[t.Kind()] = t
}

// Registered returns the kinds of the registered transports, sorted.
func Registered() []Kind {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ks := make([]Kind, 0, len(registry))
	for k := range registry {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func lookup(k Kind) (Transport, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	t, ok := registry[k]
	return t, ok
}
