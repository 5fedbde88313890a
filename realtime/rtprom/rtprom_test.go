package rtprom_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/internal/observetest"
	"github.com/rtkit/rtkit/realtime/rtprom"
	"github.com/rtkit/rtkit/realtime/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// metrics reads a registry.
type metrics struct {
	t      *testing.T
	reg    *prometheus.Registry
	byName map[string]*dto.MetricFamily
}

func newObserver(t *testing.T) (*rtprom.Observer, *metrics) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	obs, err := rtprom.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return obs, &metrics{t: t, reg: reg}
}

// gather reads the registry afresh.
func (m *metrics) gather() {
	m.t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		m.t.Fatal(err)
	}
	m.byName = map[string]*dto.MetricFamily{}
	for _, f := range fams {
		m.byName[f.GetName()] = f
	}
}

// series returns the metric of family name whose labels include labels
// (name, value pairs), or nil.
func (m *metrics) series(name string, labels ...string) *dto.Metric {
	f := m.byName[name]
	if f == nil {
		return nil
	}
next:
	for _, s := range f.GetMetric() {
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range s.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return s
	}
	return nil
}

// value is a counter's or gauge's value, a histogram's count; 0 for a
// series that does not exist.
func (m *metrics) value(name string, labels ...string) float64 {
	s := m.series(name, labels...)
	switch {
	case s == nil:
		return 0
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return 0
}

// sum is a histogram's sum.
func (m *metrics) sum(name string, labels ...string) float64 {
	if s := m.series(name, labels...); s != nil && s.Histogram != nil {
		return s.Histogram.GetSampleSum()
	}
	return 0
}

// want asserts that each (name, labels) -> value holds.
func (m *metrics) want(cases []want) {
	m.t.Helper()
	for _, c := range cases {
		got := m.value(c.name, c.labels...)
		if c.sum {
			got = m.sum(c.name, c.labels...)
		}
		if got != c.want {
			m.t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

type want struct {
	name   string
	labels []string
	want   float64
	sum    bool // a histogram's sum rather than its count
}

func rt(k realtime.Kind, more ...string) []string {
	return append([]string{"route", observetest.Route, "transport", string(k)}, more...)
}

// Scripted traffic over every transport, read back in exact counts: one
// connection each, opened and closed with its code, three messages and
// six bytes each way (one and three on request/response).
func TestEveryTransport(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	kinds := []realtime.Kind{realtime.WebSocket, realtime.SSE, realtime.LongPoll}
	for _, k := range kinds {
		s.Echo(k)
	}
	if code := s.Exchange("abc"); code != 200 {
		t.Fatalf("exchange: %d", code)
	}
	m.gather()
	var cases []want
	for _, k := range kinds {
		cases = append(cases,
			want{"rtkit_connections_opened_total", rt(k), 1, false},
			want{"rtkit_connections_closed_total", rt(k, "code", "4000"), 1, false},
			want{"rtkit_connections", rt(k), 0, false},
			want{"rtkit_connection_duration_seconds", rt(k), 1, false},
			want{"rtkit_messages_received_total", rt(k), 3, false},
			want{"rtkit_received_bytes_total", rt(k), 6, false},
			want{"rtkit_messages_sent_total", rt(k), 3, false},
			want{"rtkit_sent_bytes_total", rt(k), 6, false},
			want{"rtkit_send_batch_messages", rt(k), 3, true}, // the batches add up to the messages
			want{"rtkit_resumes_total", rt(k), 0, false},
			want{"rtkit_overflows_total", rt(k), 0, false},
		)
	}
	h := realtime.HTTP
	cases = append(cases,
		want{"rtkit_connections_opened_total", rt(h), 1, false},
		want{"rtkit_connections_closed_total", rt(h, "code", "1000"), 1, false},
		want{"rtkit_connections", rt(h), 0, false},
		want{"rtkit_messages_received_total", rt(h), 1, false},
		want{"rtkit_received_bytes_total", rt(h), 3, false},
		want{"rtkit_messages_sent_total", rt(h), 1, false},
		want{"rtkit_sent_bytes_total", rt(h), 3, false},
		want{"rtkit_negotiations_total", []string{"route", observetest.Route}, 3, false}, // one per rtclient dial
	)
	m.want(cases)
	for _, name := range []string{"rtkit_connections_closed_total", "rtkit_connections_opened_total"} {
		total := 0.0
		for _, s := range m.byName[name].GetMetric() {
			total += s.GetCounter().GetValue()
		}
		if total != 4 {
			t.Errorf("%s adds up to %v over every label, want 4", name, total)
		}
	}
}

// A reader too slow for its send queue is closed by the default policy:
// one overflow under policy "close", one close with 1008.
func TestSlowReaderOverflowsOnce(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Flood()
	m.gather()
	ws := realtime.WebSocket
	m.want([]want{
		{"rtkit_overflows_total", rt(ws, "policy", "close"), 1, false},
		{"rtkit_connections_closed_total", rt(ws, "code", "1008"), 1, false},
		{"rtkit_connections", rt(ws), 0, false},
	})
	if n := len(m.byName["rtkit_overflows_total"].GetMetric()); n != 1 {
		t.Errorf("%d overflow series, want 1 (policy close)", n)
	}
}

// An SSE stream dropped and reopened with Last-Event-ID is one resume of
// one connection.
func TestSSEResumeOnce(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.ResumeSSE()
	m.gather()
	k := realtime.SSE
	m.want([]want{
		{"rtkit_resumes_total", rt(k), 1, false},
		{"rtkit_connections_opened_total", rt(k), 1, false},
		{"rtkit_connections_closed_total", rt(k, "code", "4000"), 1, false},
		{"rtkit_messages_received_total", rt(k), 2, false},
		{"rtkit_messages_sent_total", rt(k), 2, false},
		{"rtkit_gaps_total", rt(k), 0, false},
	})
}

// A client whose WebSocket upgrade a proxy refuses falls back to SSE, and
// is counted there: the transport it ended up on.
func TestFallbackCountedAsSSE(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, true)
	if k := s.Fallback(); k != realtime.SSE {
		t.Fatalf("the client ended on %s, want sse", k)
	}
	m.gather()
	m.want([]want{
		{"rtkit_connections_opened_total", rt(realtime.SSE), 1, false},
		{"rtkit_connections_closed_total", rt(realtime.SSE, "code", "4000"), 1, false},
		{"rtkit_negotiations_total", []string{"route", observetest.Route}, 1, false},
	})
	if s := m.series("rtkit_connections_opened_total", rt(realtime.WebSocket)...); s != nil {
		t.Errorf("a WebSocket series: %v", s)
	}
	if f := m.byName["rtkit_refused_total"]; f != nil {
		t.Errorf("refusals counted for what the proxy refused: %v", f)
	}
}

// Handler failures are counted by kind, refusals by status.
func TestErrorsAndRefusals(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Fail("fail")
	s.Fail("panic")
	if code := s.Foreign(); code != 403 {
		t.Fatalf("foreign origin: %d", code)
	}
	m.gather()
	ws := realtime.WebSocket
	m.want([]want{
		{"rtkit_handler_errors_total", rt(ws, "kind", "error"), 1, false},
		{"rtkit_handler_errors_total", rt(ws, "kind", "panic"), 1, false},
		{"rtkit_connections_closed_total", rt(ws, "code", "1011"), 2, false},
		{"rtkit_refused_total", rt("", "code", "403"), 1, false},
	})
}

// Every label is the route, the transport or a small enumeration.
func TestLabelsAreBounded(t *testing.T) {
	obs, m := newObserver(t)
	s := observetest.NewServer(t, obs, false)
	s.Echo(realtime.SSE)
	s.Flood()
	s.Fail("panic")
	m.gather()
	allowed := []string{"route", "transport", "code", "policy", "op", "kind"}
	for name, f := range m.byName {
		if !strings.HasPrefix(name, "rtkit_") {
			t.Errorf("metric %s outside the namespace", name)
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !slices.Contains(allowed, l.GetName()) {
					t.Errorf("%s has label %s", name, l.GetName())
				}
			}
		}
	}
}

// Two observers cannot register the same names on one registry; the
// first stays, the second's error says why.
func TestNewTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := rtprom.New(reg, nil); err != nil {
		t.Fatal(err)
	}
	_, err := rtprom.New(reg, nil)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second New: %v, want AlreadyRegisteredError", err)
	}
	if _, err := rtprom.New(reg, &rtprom.Options{Namespace: "other"}); err != nil {
		t.Fatalf("another namespace: %v", err)
	}
}

// Broker calls through topics.Observe are timed by op, their failures
// counted.
func TestBrokerCalls(t *testing.T) {
	obs, m := newObserver(t)
	mem := topics.NewMemoryBroker(nil)
	b := topics.Observe(mem, obs)
	ctx := context.Background()
	b.Publish(ctx, "t", realtime.Text("x"))
	b.History(ctx, "t", 0, 0)
	mem.Close()
	b.Publish(ctx, "t", realtime.Text("y"))
	m.gather()
	m.want([]want{
		{"rtkit_broker_duration_seconds", []string{"op", "publish"}, 2, false},
		{"rtkit_broker_duration_seconds", []string{"op", "history"}, 1, false},
		{"rtkit_broker_errors_total", []string{"op", "publish"}, 1, false},
		{"rtkit_broker_errors_total", []string{"op", "history"}, 0, false},
	})
}
