package rtotel_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/observetest"
	"github.com/rtkit/rtkit/realtime/rtotel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reading is what a ManualReader collected.
type reading struct {
	t       *testing.T
	reader  *sdkmetric.ManualReader
	metrics map[string]metricdata.Metrics
}

func newObserver(t *testing.T) (*rtotel.Observer, *reading) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	obs, err := rtotel.New(mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return obs, &reading{t: t, reader: reader}
}

func (r *reading) collect() {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatal(err)
	}
	r.metrics = map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != rtotel.ScopeName {
			r.t.Fatalf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			r.metrics[m.Name] = m
		}
	}
}

// matches reports whether set has every attribute of kvs.
func matches(set attribute.Set, kvs []attribute.KeyValue) bool {
	for _, kv := range kvs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// value adds up the points of name that have kvs: a sum's values, a
// histogram's counts (or its sums with sum set).
func (r *reading) value(name string, sum bool, kvs ...attribute.KeyValue) float64 {
	total := 0.0
	switch d := r.metrics[name].Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, kvs) {
				total += float64(p.Value)
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, kvs) {
				if sum {
					total += float64(p.Sum)
				} else {
					total += float64(p.Count)
				}
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, kvs) {
				if sum {
					total += p.Sum
				} else {
					total += float64(p.Count)
				}
			}
		}
	}
	return total
}

type want struct {
	name string
	kvs  []attribute.KeyValue
	want float64
	sum  bool
}

func (r *reading) want(cases []want) {
	r.t.Helper()
	for _, c := range cases {
		if got := r.value(c.name, c.sum, c.kvs...); got != c.want {
			r.t.Errorf("%s%v = %v, want %v", c.name, c.kvs, got, c.want)
		}
	}
}

func on(k realtime.Kind, more ...attribute.KeyValue) []attribute.KeyValue {
	return append([]attribute.KeyValue{rtotel.RouteKey.String(observetest.Route), rtotel.TransportKey.String(string(k))}, more...)
}

var (
	in  = attribute.String("network.io.direction", "receive")
	out = attribute.String("network.io.direction", "transmit")
)

// The same script as rtprom's, read back from the SDK.
func TestEveryTransport(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	kinds := []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	for _, k := range kinds {
		s.Echo(k)
	}
	if code := s.Exchange("abc"); code != 200 {
		t.Fatalf("exchange: %d", code)
	}
	r.collect()
	var cases []want
	for _, k := range kinds {
		cases = append(cases,
			want{"rtkit.connection.opened", on(k), 1, false},
			want{"rtkit.connection.closed", on(k, rtotel.CloseCodeKey.Int(4000)), 1, false},
			want{"rtkit.connection.count", on(k), 0, false},
			want{"rtkit.connection.duration", on(k), 1, false},
			want{"rtkit.message.received", on(k), 3, false},
			want{"rtkit.message.sent", on(k), 3, false},
			want{"rtkit.io", on(k, in), 6, false},
			want{"rtkit.io", on(k, out), 6, false},
			want{"rtkit.send.batch", on(k), 3, true},
			want{"rtkit.session.resumed", on(k), 0, false},
		)
	}
	h := realtime.HTTP
	cases = append(cases,
		want{"rtkit.connection.opened", on(h), 1, false},
		want{"rtkit.connection.closed", on(h, rtotel.CloseCodeKey.Int(1000)), 1, false},
		want{"rtkit.message.received", on(h), 1, false},
		want{"rtkit.message.sent", on(h), 1, false},
		want{"rtkit.io", on(h, in), 3, false},
		want{"rtkit.io", on(h, out), 3, false},
		want{"rtkit.negotiation.count", []attribute.KeyValue{rtotel.RouteKey.String(observetest.Route)}, 3, false},
		want{"rtkit.connection.opened", nil, 4, false},
		want{"rtkit.connection.closed", nil, 4, false},
	)
	r.want(cases)
	if u := r.metrics["rtkit.message.sent"].Unit; u != "{message}" {
		t.Errorf("unit of rtkit.message.sent: %q", u)
	}
	if u := r.metrics["rtkit.connection.duration"].Unit; u != "s" {
		t.Errorf("unit of rtkit.connection.duration: %q", u)
	}
	if u := r.metrics["rtkit.io"].Unit; u != "By" {
		t.Errorf("unit of rtkit.io: %q", u)
	}
}

func TestSlowReaderOverflowsOnce(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Flood()
	r.collect()
	ws := realtime.WebSocket
	r.want([]want{
		{"rtkit.overflow", on(ws, rtotel.PolicyKey.String("close")), 1, false},
		{"rtkit.overflow", nil, 1, false},
		{"rtkit.connection.closed", on(ws, rtotel.CloseCodeKey.Int(1008)), 1, false},
	})
}

func TestSSEResumeOnce(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.ResumeSSE()
	r.collect()
	k := realtime.SSE
	r.want([]want{
		{"rtkit.session.resumed", on(k), 1, false},
		{"rtkit.session.resumed", nil, 1, false},
		{"rtkit.connection.opened", on(k), 1, false},
		{"rtkit.message.received", on(k), 2, false},
		{"rtkit.message.sent", on(k), 2, false},
	})
}

func TestFallbackCountedAsSSE(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, true)
	if k := s.Fallback(); k != realtime.SSE {
		t.Fatalf("the client ended on %s, want sse", k)
	}
	r.collect()
	r.want([]want{
		{"rtkit.connection.opened", on(realtime.SSE), 1, false},
		{"rtkit.connection.opened", on(realtime.WebSocket), 0, false},
		{"rtkit.connection.opened", nil, 1, false},
		{"rtkit.request.refused", nil, 0, false},
	})
}

func TestErrorsAndRefusals(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Fail("fail")
	s.Fail("panic")
	if code := s.Foreign(); code != 403 {
		t.Fatalf("foreign origin: %d", code)
	}
	r.collect()
	ws := realtime.WebSocket
	r.want([]want{
		{"rtkit.handler.errors", on(ws, attribute.String("error.type", "error")), 1, false},
		{"rtkit.handler.errors", on(ws, attribute.String("error.type", "panic")), 1, false},
		{"rtkit.request.refused", on("", attribute.Int("http.response.status_code", 403)), 1, false},
	})
}

// Every attribute is the route, the transport or a small enumeration.
func TestAttributesAreBounded(t *testing.T) {
	obs, r := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Echo(realtime.WebSocket)
	s.Flood()
	s.Fail("panic")
	r.collect()
	allowed := []attribute.Key{rtotel.RouteKey, rtotel.TransportKey, rtotel.CloseCodeKey, rtotel.PolicyKey, rtotel.OperationKey,
		"error.type", "http.response.status_code", "network.io.direction"}
	check := func(name string, set attribute.Set) {
		for _, kv := range set.ToSlice() {
			if !slices.Contains(allowed, kv.Key) {
				t.Errorf("%s has attribute %s", name, kv.Key)
			}
		}
	}
	for name, m := range r.metrics {
		if !strings.HasPrefix(name, "rtkit.") {
			t.Errorf("instrument %s outside the namespace", name)
		}
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				check(name, p.Attributes)
			}
		case metricdata.Histogram[int64]:
			for _, p := range d.DataPoints {
				check(name, p.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				check(name, p.Attributes)
			}
		}
	}
}
