package rtprom

import (
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtkit/rtkit/realtime"
)

// Options configure an Observer. A nil *Options, and every zero field,
// means the default the field's comment states.
type Options struct {
	// Namespace is the first part of every metric name. Empty means
	// "rtkit".
	Namespace string
	// ConstLabels are added to every metric, such as a service name.
	ConstLabels prometheus.Labels
	// DurationBuckets are the buckets of rtkit_connection_duration_seconds.
	// Nil means DurationBuckets.
	DurationBuckets []float64
	// LatencyBuckets are the buckets of rtkit_relay_duration_seconds and
	// rtkit_broker_duration_seconds. Nil means prometheus.DefBuckets.
	LatencyBuckets []float64
}

// Default buckets.
var (
	// DurationBuckets span a connection's life: from a request/response
	// exchange (well under a second) to a dashboard left open all day.
	DurationBuckets = []float64{0.1, 1, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600, 24 * 3600}
	// BatchBuckets are the buckets of rtkit_send_batch_messages: powers of
	// two up to realtime.DefaultSendQueue.
	BatchBuckets = prometheus.ExponentialBuckets(1, 2, 9)
	// CatchUpBuckets are the buckets of rtkit_catchup_messages.
	CatchUpBuckets = prometheus.ExponentialBuckets(1, 10, 6)
)

// Observer is a realtime.Observer that counts what it is told in
// Prometheus metrics (see the package documentation for the list). Set
// it as realtime.Options.Observer of any number of routes; it is safe
// for concurrent use.
type Observer struct {
	m metrics

	mu     sync.Mutex // serialises additions to pairs
	series atomic.Pointer[map[pair]*series]
}

var _ realtime.Observer = (*Observer)(nil)

// metrics are the vectors an Observer registers.
type metrics struct {
	conns                                                    *prometheus.GaugeVec
	opened, closed, received, receivedBytes, sent, sentBytes *prometheus.CounterVec
	overflows, inboxFull, resumes, gaps, expiries, refused   *prometheus.CounterVec
	negotiations, relayErrors, handlerErrors, brokerErrors   *prometheus.CounterVec
	duration, batch, catchUp, relayDuration, brokerDuration  *prometheus.HistogramVec
}

// pair is a route and a transport: the labels every connection event has.
type pair struct {
	route     string
	transport realtime.Kind
}

// series are the metrics of one pair, resolved once.
type series struct {
	conns                                              prometheus.Gauge
	opened, received, receivedBytes, sent, sentBytes   prometheus.Counter
	inboxFull, resumes, gaps, expiries, errors, panics prometheus.Counter
	duration, batch, catchUp                           prometheus.Observer
	closed, overflows, refused                         *prometheus.CounterVec // curried with route and transport
}

// New returns an Observer whose metrics are registered on reg. It fails
// if reg refuses them, typically because another Observer with the same
// Namespace and ConstLabels registered them first (share that one
// instead: an Observer may serve every route).
func New(reg prometheus.Registerer, o *Options) (*Observer, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Namespace == "" {
		opts.Namespace = "rtkit"
	}
	if opts.DurationBuckets == nil {
		opts.DurationBuckets = DurationBuckets
	}
	if opts.LatencyBuckets == nil {
		opts.LatencyBuckets = prometheus.DefBuckets
	}
	var cs []prometheus.Collector
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: opts.Namespace, Name: name, Help: help, ConstLabels: opts.ConstLabels}, labels)
		cs = append(cs, v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: opts.Namespace, Name: name, Help: help, ConstLabels: opts.ConstLabels, Buckets: buckets}, labels)
		cs = append(cs, v)
		return v
	}
	rt := []string{"route", "transport"}
	m := metrics{
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: opts.Namespace, Name: "connections",
			Help: "Live connections.", ConstLabels: opts.ConstLabels}, rt),
		opened:         counter("connections_opened_total", "Connections opened, by the transport the client ended up on.", rt...),
		closed:         counter("connections_closed_total", "Connections closed, by close code.", "route", "transport", "code"),
		duration:       histogram("connection_duration_seconds", "How long connections lived.", opts.DurationBuckets, rt...),
		received:       counter("messages_received_total", "Messages received from clients.", rt...),
		receivedBytes:  counter("received_bytes_total", "Payload bytes of the messages received from clients.", rt...),
		sent:           counter("messages_sent_total", "Messages written to clients.", rt...),
		sentBytes:      counter("sent_bytes_total", "Payload bytes of the messages written to clients.", rt...),
		batch:          histogram("send_batch_messages", "Messages a writer took from a send queue at once (the queue's depth).", BatchBuckets, rt...),
		overflows:      counter("overflows_total", "Times a full send queue applied its overflow policy.", "route", "transport", "policy"),
		inboxFull:      counter("inbox_full_total", "Times a full inbox paused the reader or refused a POST.", rt...),
		catchUp:        histogram("catchup_messages", "Messages a topic catch-up streamed.", CatchUpBuckets, rt...),
		resumes:        counter("resumes_total", "Sessions resumed by a new request.", rt...),
		gaps:           counter("gaps_total", "Clients told that messages were lost.", rt...),
		expiries:       counter("session_expiries_total", "Sessions not resumed within the resume window.", rt...),
		refused:        counter("refused_total", "Requests refused, by HTTP status.", "route", "transport", "code"),
		negotiations:   counter("negotiations_total", "Negotiation requests.", "route"),
		relayDuration:  histogram("relay_duration_seconds", "Session requests forwarded to the node that holds the session.", opts.LatencyBuckets, "route"),
		relayErrors:    counter("relay_errors_total", "Forwarded session requests that failed.", "route"),
		handlerErrors:  counter("handler_errors_total", "Handler callbacks that returned an error or panicked.", "route", "transport", "kind"),
		brokerDuration: histogram("broker_duration_seconds", "Broker calls.", opts.LatencyBuckets, "op"),
		brokerErrors:   counter("broker_errors_total", "Broker calls that failed.", "op"),
	}
	cs = append(cs, m.conns)
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, c := range cs {
			reg.Unregister(c)
		}
		return nil, err
	}
	obs := &Observer{m: m}
	obs.series.Store(&map[pair]*series{})
	return obs, nil
}

// Observe counts e.
func (o *Observer) Observe(e realtime.Event) {
	switch e.Kind {
	case realtime.EventNegotiate:
		o.m.negotiations.WithLabelValues(e.Route).Inc()
		return
	case realtime.EventRelay:
		o.m.relayDuration.WithLabelValues(e.Route).Observe(e.Duration.Seconds())
		if e.Err != nil {
			o.m.relayErrors.WithLabelValues(e.Route).Inc()
		}
		return
	case realtime.EventPublish:
		o.m.brokerDuration.WithLabelValues(e.Op).Observe(e.Duration.Seconds())
		if e.Err != nil {
			o.m.brokerErrors.WithLabelValues(e.Op).Inc()
		}
		return
	}
	s := o.of(e.Route, e.Transport)
	switch e.Kind {
	case realtime.EventOpen:
		s.opened.Inc()
		s.conns.Inc()
	case realtime.EventClose:
		s.conns.Dec()
		s.closed.WithLabelValues(strconv.Itoa(e.Code)).Inc()
		s.duration.Observe(e.Duration.Seconds())
	case realtime.EventReceive:
		s.received.Inc()
		s.receivedBytes.Add(float64(e.Bytes))
	case realtime.EventSend:
		s.sent.Add(float64(e.N))
		s.sentBytes.Add(float64(e.Bytes))
		s.batch.Observe(float64(e.N))
	case realtime.EventOverflow:
		s.overflows.WithLabelValues(e.Policy.String()).Inc()
	case realtime.EventInboxFull:
		s.inboxFull.Inc()
	case realtime.EventCatchUp:
		s.catchUp.Observe(float64(e.N))
	case realtime.EventGap:
		s.gaps.Inc()
	case realtime.EventResume:
		s.resumes.Inc()
	case realtime.EventExpire:
		s.expiries.Inc()
	case realtime.EventRefuse:
		s.refused.WithLabelValues(strconv.Itoa(e.Code)).Inc()
	case realtime.EventError:
		var pe *realtime.PanicError
		if errors.As(e.Err, &pe) {
			s.panics.Inc()
		} else {
			s.errors.Inc()
		}
	}
}

// of returns the series of route and transport, resolving them on first
// use. The map is copied on each addition, which happens once per pair,
// so that lookups on the data path take no lock.
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
	m := o.m
	r, t := route, string(transport)
	labels := prometheus.Labels{"route": r, "transport": t}
	s := &series{
		conns:         m.conns.WithLabelValues(r, t),
		opened:        m.opened.WithLabelValues(r, t),
		received:      m.received.WithLabelValues(r, t),
		receivedBytes: m.receivedBytes.WithLabelValues(r, t),
		sent:          m.sent.WithLabelValues(r, t),
		sentBytes:     m.sentBytes.WithLabelValues(r, t),
		inboxFull:     m.inboxFull.WithLabelValues(r, t),
		resumes:       m.resumes.WithLabelValues(r, t),
		gaps:          m.gaps.WithLabelValues(r, t),
		expiries:      m.expiries.WithLabelValues(r, t),
		errors:        m.handlerErrors.WithLabelValues(r, t, "error"),
		panics:        m.handlerErrors.WithLabelValues(r, t, "panic"),
		duration:      m.duration.WithLabelValues(r, t),
		batch:         m.batch.WithLabelValues(r, t),
		catchUp:       m.catchUp.WithLabelValues(r, t),
		closed:        m.closed.MustCurryWith(labels),
		overflows:     m.overflows.MustCurryWith(labels),
		refused:       m.refused.MustCurryWith(labels),
	}
	next := maps.Clone(old)
	next[k] = s
	o.series.Store(&next)
	return s
}
