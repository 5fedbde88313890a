package rtprom_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtprom"
	"github.com/rtkit/rtkit/realtime/topics"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// hookRounds is how many times each side is measured, in turn.
const hookRounds = 16

// BenchmarkHook measures what the Observer hook costs on the data path:
// the same WebSocket workload on two routes, one with a Prometheus
// Observer set and one without, taking turns (unset, set, unset, set...)
// so that drift on a shared machine lands on both. It reports the median
// over rounds of the observed route's time per operation relative to the
// bare route's in the same round (the bare rate over the observed one:
// "ratio", 1.02 meaning 2% slower with the hook), with the lowest and
// highest, and the same for the process's CPU time per
// operation ("cpu-ratio", steadier than wall time on a shared machine:
// the side not measured is idle, so the CPU spent is the measured
// side's, clients included).
//
//   - echo: echoClients connections each send a 64-byte message and wait
//     for its echo before the next; b.N echoes per round and side.
//
//   - fanout: fanoutClients connections subscribed to one topic; b.N
//     publishes per round and side, each delivered to every connection.
//
//     go test -run XXX -bench Hook -benchtime 20000x ./realtime/rtprom/
func BenchmarkHook(b *testing.B) {
	b.Run("echo", func(b *testing.B) {
		payload := []byte(strings.Repeat("x", 64))
		echo := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) }}
		sides := [2]*benchRoute{newBenchRoute(b, echo, false), newBenchRoute(b, echo, true)}
		conns := [2]wsConns{}
		for i, s := range sides {
			conns[i] = s.dial(b, echoClients)
			defer conns[i].close()
		}
		alternate(b, func(i int) float64 { return conns[i].echo(b, b.N, payload) }, b.N)
	})
	b.Run("fanout", func(b *testing.B) {
		var sides [2]*benchRoute
		var ts [2]*topics.Topics
		var conns [2]wsConns
		for i := range sides {
			t := topics.New(nil)
			ts[i] = t
			subscribed := make(chan struct{}, fanoutClients)
			sides[i] = newBenchRoute(b, realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
				err := t.Subscribe(c, "room")
				subscribed <- struct{}{}
				return err
			}}, i == 1)
			conns[i] = sides[i].dial(b, fanoutClients)
			defer conns[i].close()
			for range fanoutClients {
				<-subscribed
			}
		}
		alternate(b, func(i int) float64 { return conns[i].fanout(b, ts[i], b.N) }, b.N*fanoutClients)
	})
}

// alternate runs measure(0) (bare) and measure(1) (observed) in turn,
// each doing ops operations and returning their rate, and reports the
// ratios of their rates and of their CPU time per operation.
func alternate(b *testing.B, measure func(side int) float64, ops int) {
	var ratios, cpuRatios, bare, observed, bareCPU, observedCPU []float64
	b.ReportAllocs()
	b.ResetTimer()
	for r := range hookRounds {
		var rates, cpu [2]float64
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, side := range order {
			c0 := cpuTime()
			rates[side] = measure(side)
			cpu[side] = float64((cpuTime() - c0).Nanoseconds()) / float64(ops)
		}
		ratios = append(ratios, rates[0]/rates[1])
		cpuRatios = append(cpuRatios, cpu[1]/cpu[0])
		bare, observed = append(bare, rates[0]), append(observed, rates[1])
		bareCPU, observedCPU = append(bareCPU, cpu[0]), append(observedCPU, cpu[1])
	}
	b.StopTimer()
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(slices.Min(cpuRatios), "cpu-ratio-min")
	b.ReportMetric(slices.Max(cpuRatios), "cpu-ratio-max")
	b.ReportMetric(median(bare), "unset/s")
	b.ReportMetric(median(observed), "set/s")
	b.ReportMetric(median(bareCPU), "unset-cpu-ns/op")
	b.ReportMetric(median(observedCPU), "set-cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const (
	echoClients   = 50
	fanoutClients = 100
)

type benchRoute struct {
	rt  *realtime.Route
	srv *httptest.Server
}

func newBenchRoute(b *testing.B, h realtime.Handler, observed bool) *benchRoute {
	o := realtime.Options{
		Transports: []realtime.Transport{rtws.New(rtws.Options{})},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		SendQueue:  4096,
		Name:       "bench",
		// The side not measured does not read: no pings to miss.
		PingInterval: -1,
	}
	if observed {
		obs, err := rtprom.New(prometheus.NewRegistry(), nil)
		if err != nil {
			b.Fatal(err)
		}
		o.Observer = obs
	}
	s := &benchRoute{rt: realtime.NewRoute(h, &o)}
	s.srv = httptest.NewServer(s.rt)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.rt.Shutdown(ctx)
		s.srv.Close()
	})
	return s
}

type wsConns []*websocket.Conn

func (s *benchRoute) dial(b *testing.B, n int) wsConns {
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http")
	var conns wsConns
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
	}
	return conns
}

func (conns wsConns) close() {
	for _, ws := range conns {
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				break
			}
		}
		ws.Close()
	}
}

// echo spreads n echoes over the connections and returns echoes/s.
func (conns wsConns) echo(b *testing.B, n int, payload []byte) float64 {
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	start := time.Now()
	for i, ws := range conns {
		k := n / len(conns)
		if i < n%len(conns) {
			k++
		}
		wg.Go(func() {
			for range k {
				if err := ws.WriteMessage(websocket.TextMessage, payload); err != nil {
					errs <- err
					return
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

// fanout publishes n messages to the topic and returns deliveries/s once
// every connection has read all of them. It publishes in chunks of
// fanoutChunk and waits for every connection to read a chunk before the
// next, so that no send queue overflows.
func (conns wsConns) fanout(b *testing.B, ts *topics.Topics, n int) float64 {
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	read := make(chan struct{}, len(conns))
	chunks := (n + fanoutChunk - 1) / fanoutChunk
	size := func(c int) int { return min(fanoutChunk, n-c*fanoutChunk) }
	start := time.Now()
	for _, ws := range conns {
		wg.Go(func() {
			for c := range chunks {
				for range size(c) {
					if _, _, err := ws.ReadMessage(); err != nil {
						errs <- err
						read <- struct{}{}
						return
					}
				}
				read <- struct{}{}
			}
		})
	}
	ctx := context.Background()
	msg := realtime.Text(strings.Repeat("y", 64))
	for c := range chunks {
		for i := range size(c) {
			if _, err := ts.Publish(ctx, "room", msg); err != nil {
				b.Fatal(fmt.Errorf("publish %d: %w", i, err))
			}
		}
		for range conns {
			<-read
		}
		if len(errs) > 0 {
			break
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n*len(conns)) / elapsed.Seconds()
}

// fanoutChunk is how many messages fanout publishes before it waits for
// the readers: well under the send queue.
const fanoutChunk = 1024

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// BenchmarkObserve measures one Observe call of the events on a
// connection's data path (a message received, a batch written), from
// one goroutine and from every P at once (contending for the same
// series, as the connections of one route do), against a registry: what the hook adds per message,
// to be set against an echo's CPU time (BenchmarkHook's unset-cpu-ns/op).
//
//	go test -run XXX -bench Observe ./realtime/rtprom/
func BenchmarkObserve(b *testing.B) {
	obs, err := rtprom.New(prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range []realtime.Event{
		{Kind: realtime.EventReceive, Route: "/chat", Transport: realtime.WebSocket, Bytes: 64},
		{Kind: realtime.EventSend, Route: "/chat", Transport: realtime.WebSocket, N: 1, Bytes: 64},
	} {
		for _, parallel := range []bool{false, true} {
			name := e.Kind.String()
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							obs.Observe(e)
						}
					})
					return
				}
				for range b.N {
					obs.Observe(e)
				}
			})
		}
	}
}
