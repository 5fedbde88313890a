package websocket_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// echoClients is how many connections share the echoes.
const echoClients = 50

// echoRounds is how many times each side is measured, in turn.
const echoRounds = 6

// BenchmarkEcho measures echo round trips through rtkit's WebSocket
// transport against a raw gorilla/websocket echo server configured like it
// (same buffer sizes, a shared write buffer pool), both on loopback, with
// the two taking turns: each round runs b.N echoes on gorilla, then b.N on
// rtkit, so that drift on a shared machine lands on both sides. Each of
// echoClients connections sends a message and waits for its echo before
// sending the next. It reports the median over rounds of rtkit's echoes/s
// divided by gorilla's in the same round, and the lowest and highest
// ratio, with both sides' median echoes/s and p50 latency.
//
//	go test -run XXX -bench Echo -benchtime 20000x ./transports/websocket/
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			payload := []byte(strings.Repeat("x", size))
			gsrv, wait := newGorillaEcho()
			defer func() { gsrv.Close(); wait() }()
			rt := realtime.NewRoute(realtime.Funcs{
				OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
			}, &realtime.Options{
				Transports: []realtime.Transport{rtws.New(rtws.Options{})},
				Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			rsrv := httptest.NewServer(rt)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := rt.Shutdown(ctx); err != nil {
					b.Errorf("shutdown: %v", err)
				}
				rsrv.Close()
			}()
			g, r := dialEchoClients(b, gsrv), dialEchoClients(b, rsrv)
			defer g.close()
			defer r.close()
			var ratios, gRates, rRates, gP50, rP50 []float64
			b.ReportAllocs()
			b.ResetTimer()
			for range echoRounds {
				gr, gp := g.run(b, b.N, payload)
				rr, rp := r.run(b, b.N, payload)
				ratios = append(ratios, rr/gr)
				gRates, rRates = append(gRates, gr), append(rRates, rr)
				gP50, rP50 = append(gP50, gp), append(rP50, rp)
			}
			b.StopTimer()
			b.ReportMetric(median(ratios), "ratio")
			b.ReportMetric(slices.Min(ratios), "ratio-min")
			b.ReportMetric(slices.Max(ratios), "ratio-max")
			b.ReportMetric(median(gRates), "gorilla-echoes/s")
			b.ReportMetric(median(rRates), "rtkit-echoes/s")
			b.ReportMetric(median(gP50), "gorilla-p50-µs")
			b.ReportMetric(median(rP50), "rtkit-p50-µs")
		})
	}
}

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// echoClients is a set of connections to one echo server.
type echoConns []*websocket.Conn

func dialEchoClients(b *testing.B, srv *httptest.Server) echoConns {
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	conns := make(echoConns, 0, echoClients)
	for range echoClients {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
	}
	// Warm every connection up so that no round has first-use costs.
	for _, ws := range conns {
		if err := echo(ws, []byte("warm")); err != nil {
			b.Fatal(err)
		}
	}
	return conns
}

func (conns echoConns) close() {
	for _, ws := range conns {
		closeClient(ws)
	}
}

// run spreads n echoes of payload over the connections and returns the
// echoes/s and the median round trip in µs.
func (conns echoConns) run(b *testing.B, n int, payload []byte) (rate, p50 float64) {
	lat := make([]time.Duration, n)
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	from := 0
	for i, ws := range conns {
		k := n / len(conns)
		if i < n%len(conns) {
			k++
		}
		mine := lat[from : from+k]
		from += k
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range mine {
				t0 := time.Now()
				if err := echo(ws, payload); err != nil {
					errs <- err
					return
				}
				mine[j] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), micros(percentile(lat, 0.50))
}

// newGorillaEcho starts the baseline: one goroutine per connection, the
// handler's, doing ReadMessage then WriteMessage. wait returns once every
// handler has returned (httptest.Server.Close does not wait for hijacked
// connections).
func newGorillaEcho() (srv *httptest.Server, wait func()) {
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	var wg sync.WaitGroup
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(mt, p); err != nil {
				return
			}
		}
	}))
	return srv, wg.Wait
}

// echo sends payload and reads it back.
func echo(ws *websocket.Conn, payload []byte) error {
	if err := ws.WriteMessage(websocket.TextMessage, payload); err != nil {
		return err
	}
	_, p, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if len(p) != len(payload) {
		return io.ErrShortBuffer
	}
	return nil
}

// closeClient sends a close frame, waits (bounded) for the server's, and
// drops the connection.
func closeClient(ws *websocket.Conn) {
	deadline := time.Now().Add(5 * time.Second)
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	ws.Close()
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
