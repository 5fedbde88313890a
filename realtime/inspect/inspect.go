package inspect

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtjs"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/transports"
)

//go:embed inspect.html
var page []byte

// Route is a route the inspector shows, under a name of the
// application's choice (its pattern, say).
type Route struct {
	Name  string
	Route *realtime.Route
}

// Topics is a set of topics the inspector shows.
type Topics struct {
	Name   string
	Topics *topics.Topics
}

// Options configure a Handler. A nil *Options, and every zero field,
// means the default the field's comment states.
type Options struct {
	// Routes are the routes to show, in this order.
	Routes []Route
	// Topics are the topic sets to show, in this order.
	Topics []Topics
	// Node names this process on the page. Empty means its host name and
	// process id.
	Node string
	// Every is how often an open page receives a snapshot. Zero means a
	// second.
	Every time.Duration
	// MaxConns is the most connections listed per route, those with the
	// longest send queue first, then the oldest; the counts cover them
	// all. Zero means 100.
	MaxConns int
	// MaxTopics is the most topics listed per set, the most subscribed
	// first. Zero means 100.
	MaxTopics int
	// Logger receives the log lines of the inspector's own route. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultEvery     = time.Second
	DefaultMaxConns  = 100
	DefaultMaxTopics = 100
)

// NodeLister is implemented by brokers that know the nodes of their
// cluster. Neither the NATS nor the Redis broker does (nodes there are
// only addresses that requests are sent to), so the inspector shows this
// node and says the others are unknown.
type NodeLister interface {
	// Nodes lists the nodes the broker knows of.
	Nodes(ctx context.Context) ([]string, error)
}

// Handler serves the inspector: its page, the browser client the page
// imports, its snapshots as JSON, and the rtkit route the page connects
// to. Mount it under a prefix ending in a slash, behind authentication:
//
//	mux.Handle("/debug/rtkit/", requireAdmin(insp))
//
// It serves, relative to that prefix: "" the page, "rtkit.js" the client,
// "live" the route (every Options.Every a snapshot), "snapshot.json" one
// snapshot.
type Handler struct {
	o     Options
	route *realtime.Route
	js    http.Handler
}

var _ http.Handler = (*Handler)(nil)

// New returns an inspector of the routes and topics o lists.
func New(o *Options) *Handler {
	h := &Handler{js: rtjs.Handler()}
	if o != nil {
		h.o = *o
	}
	h.o.Routes = slices.Clone(h.o.Routes)
	h.o.Topics = slices.Clone(h.o.Topics)
	if h.o.Node == "" {
		host, _ := os.Hostname()
		h.o.Node = fmt.Sprintf("%s (pid %d)", cmp.Or(host, "localhost"), os.Getpid())
	}
	if h.o.Every <= 0 {
		h.o.Every = DefaultEvery
	}
	if h.o.MaxConns <= 0 {
		h.o.MaxConns = DefaultMaxConns
	}
	if h.o.MaxTopics <= 0 {
		h.o.MaxTopics = DefaultMaxTopics
	}
	ro := transports.Dashboard // SSE first; a slow page drops old snapshots
	ro.Name = "inspect"
	ro.Logger = h.o.Logger
	ro.QuietClose = true
	h.route = realtime.NewRoute(realtime.Funcs{OnOpen: h.open}, &ro)
	return h
}

// open pushes a snapshot now and every Options.Every.
func (h *Handler) open(c *realtime.Conn) error {
	push := func() {
		ctx, cancel := context.WithTimeout(c.Context(), h.o.Every)
		defer cancel()
		c.SendJSON(h.Snapshot(ctx))
	}
	push()
	c.Every(h.o.Every, push)
	return nil
}

// ServeHTTP serves the inspector's files and route by the last element
// of the request's path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(page)
	case path.Base(p) == "rtkit.js":
		r2 := r.Clone(r.Context())
		r2.URL.Path = rtjs.Path + "rtkit.js"
		h.js.ServeHTTP(w, r2)
	case path.Base(p) == "live":
		h.route.ServeHTTP(w, r)
	case path.Base(p) == "snapshot.json":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), h.o.Every)
		defer cancel()
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(h.Snapshot(ctx))
	default:
		http.NotFound(w, r)
	}
}

// Shutdown closes the pages connected to the inspector and waits for
// them, as realtime.Route.Shutdown does.
func (h *Handler) Shutdown(ctx context.Context) error { return h.route.Shutdown(ctx) }

// Snapshot is what the page shows at one moment.
type Snapshot struct {
	Node    string           `json:"node"`
	Time    time.Time        `json:"time"`
	Routes  []RouteSnapshot  `json:"routes"`
	Topics  []TopicsSnapshot `json:"topics"`
	Cluster Cluster          `json:"cluster"`
}

// RouteSnapshot is one route's live connections.
type RouteSnapshot struct {
	Name string `json:"name"`
	// Conns counts every live connection, and ByTransport by transport.
	Conns       int            `json:"conns"`
	ByTransport map[string]int `json:"byTransport"`
	// Listed are at most Options.MaxConns of them.
	Listed []ConnSnapshot `json:"listed"`
}

// ConnSnapshot is one connection.
type ConnSnapshot struct {
	ID        string `json:"id"`
	Transport string `json:"transport"`
	// Remote is the address of the request that opened the connection.
	Remote string `json:"remote"`
	// Age is how long the connection has been open, in seconds.
	Age float64 `json:"age"`
	// Queued and QueuedBytes wait in its send queue; Inbox counts the
	// messages waiting for the handler.
	Queued      int `json:"queued"`
	QueuedBytes int `json:"queuedBytes"`
	Inbox       int `json:"inbox"`
	// MsgsIn, BytesIn, MsgsOut and BytesOut count its traffic so far.
	MsgsIn   int64 `json:"msgsIn"`
	BytesIn  int64 `json:"bytesIn"`
	MsgsOut  int64 `json:"msgsOut"`
	BytesOut int64 `json:"bytesOut"`
}

// TopicsSnapshot is one topic set: its topics with local subscribers.
type TopicsSnapshot struct {
	Name   string          `json:"name"`
	Topics []TopicSnapshot `json:"topics"`
	// Error says why some history could not be read from the broker.
	Error string `json:"error,omitempty"`
}

// TopicSnapshot is one topic with subscribers on this node (see
// topics.TopicStats).
type TopicSnapshot struct {
	Name        string `json:"name"`
	Subscribers int    `json:"subscribers"`
	History     int    `json:"history"`
	Last        uint64 `json:"last"`
}

// Cluster is what the brokers say of the nodes.
type Cluster struct {
	// Nodes are the nodes a broker listed, or only this one when none
	// could (Known false).
	Nodes []string `json:"nodes"`
	Known bool     `json:"known"`
}

// Snapshot reads the routes and topics now; ctx bounds the broker calls.
func (h *Handler) Snapshot(ctx context.Context) Snapshot {
	now := time.Now()
	s := Snapshot{Node: h.o.Node, Time: now, Routes: []RouteSnapshot{}, Topics: []TopicsSnapshot{}}
	for _, r := range h.o.Routes {
		s.Routes = append(s.Routes, h.routeSnapshot(r, now))
	}
	for _, t := range h.o.Topics {
		list, err := t.Topics.Stats(ctx, h.o.MaxTopics)
		ts := TopicsSnapshot{Name: t.Name, Topics: make([]TopicSnapshot, 0, len(list))}
		for _, st := range list {
			ts.Topics = append(ts.Topics, TopicSnapshot{Name: st.Name, Subscribers: st.Subscribers, History: st.History, Last: st.Last})
		}
		if err != nil {
			ts.Error = err.Error()
		}
		s.Topics = append(s.Topics, ts)
	}
	s.Cluster = h.cluster(ctx)
	return s
}

func (h *Handler) routeSnapshot(r Route, now time.Time) RouteSnapshot {
	conns := r.Route.Conns()
	rs := RouteSnapshot{Name: r.Name, Conns: len(conns), ByTransport: map[string]int{}, Listed: make([]ConnSnapshot, 0, min(len(conns), h.o.MaxConns))}
	all := make([]ConnSnapshot, 0, len(conns))
	for _, c := range conns {
		st := c.Stats()
		k := string(c.Transport())
		rs.ByTransport[k]++
		age := 0.0
		if !st.Since.IsZero() {
			age = now.Sub(st.Since).Seconds()
		}
		all = append(all, ConnSnapshot{
			ID: c.ID(), Transport: k, Remote: c.Request().RemoteAddr, Age: age,
			Queued: st.Queued, QueuedBytes: st.QueuedBytes, Inbox: st.Inbox,
			MsgsIn: st.MessagesIn, BytesIn: st.BytesIn, MsgsOut: st.MessagesOut, BytesOut: st.BytesOut,
		})
	}
	slices.SortFunc(all, func(a, b ConnSnapshot) int {
		return cmp.Or(cmp.Compare(b.Queued, a.Queued), cmp.Compare(b.Age, a.Age), cmp.Compare(a.ID, b.ID))
	})
	rs.Listed = append(rs.Listed, all[:min(len(all), h.o.MaxConns)]...)
	return rs
}

// cluster asks the brokers that can list nodes.
func (h *Handler) cluster(ctx context.Context) Cluster {
	var nodes []string
	known := false
	for _, t := range h.o.Topics {
		if nl, ok := t.Topics.Broker().(NodeLister); ok {
			if ns, err := nl.Nodes(ctx); err == nil {
				nodes, known = append(nodes, ns...), true
			}
		}
	}
	if !known {
		return Cluster{Nodes: []string{h.o.Node}}
	}
	slices.Sort(nodes)
	return Cluster{Nodes: slices.Compact(nodes), Known: true}
}
