package rtotel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/rtkit/rtkit/realtime"
)

// ScopeName is the name of the meter an Observer records with.
const ScopeName = "github.com/rtkit/rtkit/realtime/rtotel"

// The attribute keys, besides the conventions' own error.type,
// http.response.status_code and network.io.direction.
const (
	RouteKey     = attribute.Key("rtkit.route")
	TransportKey = attribute.Key("rtkit.transport")
	CloseCodeKey = attribute.Key("rtkit.close.code")
	PolicyKey    = attribute.Key("rtkit.overflow.policy")
	OperationKey = attribute.Key("rtkit.broker.operation")
)

const (
	errorTypeKey  = attribute.Key("error.type")
	statusCodeKey = attribute.Key("http.response.status_code")
	directionKey  = attribute.Key("network.io.direction")
)

// Options configure an Observer. A nil *Options, and every zero field,
// means the default the field's comment states.
type Options struct {
	// DurationBuckets are the bucket boundaries of
	// rtkit.connection.duration, in seconds. Nil means DurationBuckets.
	DurationBuckets []float64
	// LatencyBuckets are those of rtkit.relay.duration and
	// rtkit.broker.duration, in seconds. Nil means the SDK's defaults.
	LatencyBuckets []float64
}

// DurationBuckets span a connection's life, from a request/response
// exchange to a dashboard left open all day, in seconds.
var DurationBuckets = []float64{0.1, 1, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600, 24 * 3600}

// Observer is a realtime.Observer that records what it is told with
// OpenTelemetry instruments (see the package documentation). Set it as
// realtime.Options.Observer of any number of routes; it is safe for
// concurrent use.
type Observer struct {
	i instruments

	mu     sync.Mutex // serialises additions to series
	series atomic.Pointer[map[pair]*series]
}

var _ realtime.Observer = (*Observer)(nil)

type instruments struct {
	conns                                                  metric.Int64UpDownCounter
	opened, closed, received, sent, io                     metric.Int64Counter
	overflows, inboxFull, resumes, gaps, expiries, refused metric.Int64Counter
	negotiations, handlerErrors                            metric.Int64Counter
	batch, catchUp                                         metric.Int64Histogram
	duration, relay, broker                                metric.Float64Histogram
}

// pair is a route and a transport.
type pair struct {
	route     string
	transport realtime.Kind
}

// series holds the measurement options of one pair, made once so that
// recording allocates nothing.
type series struct {
	kvs            []attribute.KeyValue // route, transport
	add, addIn     []metric.AddOption   // addIn: with direction receive
	addOut         []metric.AddOption   // with direction transmit
	record         []metric.RecordOption
	errors, panics []metric.AddOption
}

// New returns an Observer whose instruments come from mp's meter
// ScopeName. It fails if the meter refuses an instrument.
func New(mp metric.MeterProvider, o *Options) (*Observer, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.DurationBuckets == nil {
		opts.DurationBuckets = DurationBuckets
	}
	m := mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string, buckets []float64) metric.Float64Histogram {
		hopts := []metric.Float64HistogramOption{metric.WithUnit("s"), metric.WithDescription(desc)}
		if buckets != nil {
			hopts = append(hopts, metric.WithExplicitBucketBoundaries(buckets...))
		}
		h, err := m.Float64Histogram(name, hopts...)
		errs = append(errs, err)
		return h
	}
	sizes := func(name, desc string, buckets ...float64) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit("{message}"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	var i instruments
	var err error
	i.conns, err = m.Int64UpDownCounter("rtkit.connection.count", metric.WithUnit("{connection}"), metric.WithDescription("Live connections."))
	errs = append(errs, err)
	i.opened = counter("rtkit.connection.opened", "{connection}", "Connections opened, on the transport the client ended up on.")
	i.closed = counter("rtkit.connection.closed", "{connection}", "Connections closed, by close code.")
	i.duration = seconds("rtkit.connection.duration", "How long connections lived.", opts.DurationBuckets)
	i.received = counter("rtkit.message.received", "{message}", "Messages received from clients.")
	i.sent = counter("rtkit.message.sent", "{message}", "Messages written to clients.")
	i.io = counter("rtkit.io", "By", "Payload bytes received from and written to clients.")
	i.batch = sizes("rtkit.send.batch", "Messages a writer took from a send queue at once (the queue's depth).", 1, 2, 4, 8, 16, 32, 64, 128, 256)
	i.overflows = counter("rtkit.overflow", "{overflow}", "Times a full send queue applied its overflow policy.")
	i.inboxFull = counter("rtkit.inbox.full", "{event}", "Times a full inbox paused the reader or refused a POST.")
	i.catchUp = sizes("rtkit.catchup.size", "Messages a topic catch-up streamed.", 1, 10, 100, 1000, 10000, 100000)
	i.resumes = counter("rtkit.session.resumed", "{session}", "Sessions resumed by a new request.")
	i.gaps = counter("rtkit.session.gap", "{gap}", "Clients told that messages were lost.")
	i.expiries = counter("rtkit.session.expired", "{session}", "Sessions not resumed within the resume window.")
	i.refused = counter("rtkit.request.refused", "{request}", "Requests refused, by HTTP status.")
	i.negotiations = counter("rtkit.negotiation.count", "{request}", "Negotiation requests.")
	i.relay = seconds("rtkit.relay.duration", "Session requests forwarded to the node that holds the session.", opts.LatencyBuckets)
	i.handlerErrors = counter("rtkit.handler.errors", "{error}", "Handler callbacks that returned an error or panicked.")
	i.broker = seconds("rtkit.broker.duration", "Broker calls.", opts.LatencyBuckets)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	obs := &Observer{i: i}
	obs.series.Store(&map[pair]*series{})
	return obs, nil
}

// Observe records e.
func (o *Observer) Observe(e realtime.Event) {
	ctx := context.Background()
	switch e.Kind {
	case realtime.EventNegotiate:
		o.i.negotiations.Add(ctx, 1, metric.WithAttributes(RouteKey.String(e.Route)))
		return
	case realtime.EventRelay:
		kvs := []attribute.KeyValue{RouteKey.String(e.Route)}
		if e.Err != nil {
			kvs = append(kvs, errorTypeKey.String(errorType(e.Err)))
		}
		o.i.relay.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(kvs...))
		return
	case realtime.EventPublish:
		kvs := []attribute.KeyValue{OperationKey.String(e.Op)}
		if e.Err != nil {
			kvs = append(kvs, errorTypeKey.String(errorType(e.Err)))
		}
		o.i.broker.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(kvs...))
		return
	}
	s := o.of(e.Route, e.Transport)
	switch e.Kind {
	case realtime.EventOpen:
		o.i.opened.Add(ctx, 1, s.add...)
		o.i.conns.Add(ctx, 1, s.add...)
	case realtime.EventClose:
		o.i.conns.Add(ctx, -1, s.add...)
		o.i.closed.Add(ctx, 1, s.with(CloseCodeKey.Int(e.Code)))
		o.i.duration.Record(ctx, e.Duration.Seconds(), s.record...)
	case realtime.EventReceive:
		o.i.received.Add(ctx, 1, s.add...)
		o.i.io.Add(ctx, int64(e.Bytes), s.addIn...)
	case realtime.EventSend:
		o.i.sent.Add(ctx, int64(e.N), s.add...)
		o.i.io.Add(ctx, int64(e.Bytes), s.addOut...)
		o.i.batch.Record(ctx, int64(e.N), s.record...)
	case realtime.EventOverflow:
		o.i.overflows.Add(ctx, 1, s.with(PolicyKey.String(e.Policy.String())))
	case realtime.EventInboxFull:
		o.i.inboxFull.Add(ctx, 1, s.add...)
	case realtime.EventCatchUp:
		o.i.catchUp.Record(ctx, int64(e.N), s.record...)
	case realtime.EventGap:
		o.i.gaps.Add(ctx, 1, s.add...)
	case realtime.EventResume:
		o.i.resumes.Add(ctx, 1, s.add...)
	case realtime.EventExpire:
		o.i.expiries.Add(ctx, 1, s.add...)
	case realtime.EventRefuse:
		o.i.refused.Add(ctx, 1, s.with(statusCodeKey.Int(e.Code)))
	case realtime.EventError:
		var pe *realtime.PanicError
		if errors.As(e.Err, &pe) {
			o.i.handlerErrors.Add(ctx, 1, s.panics...)
		} else {
			o.i.handlerErrors.Add(ctx, 1, s.errors...)
		}
	}
}

// with returns the option of the pair's attributes and kv, for the rarer
// events whose third attribute varies.
func (s *series) with(kv attribute.KeyValue) metric.AddOption {
	return metric.WithAttributes(append(s.kvs[:len(s.kvs):len(s.kvs)], kv)...)
}

// errorType is the error.type of err: "timeout", "canceled", or its Go
// type.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, realtime.ErrUnknownNode):
		return "unknown_node"
	}
	return fmt.Sprintf("%T", err)
}

// of returns the series of route and transport, made on first use; the
// map is copied on each addition (once per pair) so that lookups take no
// lock.
func (o *Observer) of(route string, transport realtime.Kind) *series {
	k := pair{route, transport}
	if s := (*o.series.Load())[k]; s != nil {
		return s
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	kvs := []attribute.KeyValue{RouteKey.String(route), TransportKey.String(string(transport))}
	set := attribute.NewSet(kvs...)
	add := func(more ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(kvs[:2:2], more...)...))}
	}
	s := &series{
		kvs:    kvs,
		add:    []metric.AddOption{metric.WithAttributeSet(set)},
		addIn:  add(directionKey.String("receive")),
		addOut: add(directionKey.String("transmit")),
		record: []metric.RecordOption{metric.WithAttributeSet(set)},
		errors: add(errorTypeKey.String("error")),
		panics: add(errorTypeKey.String("panic")),
	}
	next := maps.Clone(old)
	next[k] = s
	o.series.Store(&next)
	return s
}
