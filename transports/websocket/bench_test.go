package websocket_test

import (
	"context"
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
	_ "github.com/rtkit/rtkit/transports/websocket"
)

// echoClients is how many connections share the b.N echoes.
const echoClients = 50

// echoPayload is the message every client sends and waits for.
var echoPayload = []byte(strings.Repeat("x", 64))

// BenchmarkEcho measures echo round trips through rtkit's WebSocket
// transport against a raw gorilla/websocket echo server configured like it
// (same buffer sizes, a shared write buffer pool), both on loopback. Each of
// echoClients connections sends a 64-byte text message and waits for its
// echo before sending the next; b.N echoes are spread across the clients.
// Besides ns/op it reports echoes/s and the p50 and p99 round-trip latency.
//
//	go test -run XXX -bench Echo -benchtime 200000x -count 3 ./transports/websocket/
func BenchmarkEcho(b *testing.B) {
	b.Run("gorilla", func(b *testing.B) {
		srv, wait := newGorillaEcho()
		benchEcho(b, srv)
		srv.Close()
		wait()
	})
	b.Run("rtkit", func(b *testing.B) {
		rt := realtime.NewRoute(realtime.Funcs{
			OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
		}, &realtime.Options{
			Transports: []realtime.Kind{realtime.WebSocket},
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		srv := httptest.NewServer(rt)
		benchEcho(b, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
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

// benchEcho dials echoClients connections to srv, runs b.N echoes across
// them and closes them with a close handshake.
func benchEcho(b *testing.B, srv *httptest.Server) {
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	conns := make([]*websocket.Conn, 0, echoClients)
	defer func() {
		for _, ws := range conns {
			closeClient(ws)
		}
	}()
	for range echoClients {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
	}
	// Warm every connection up so that the timed part has no first-use costs.
	for _, ws := range conns {
		if err := echo(ws); err != nil {
			b.Fatal(err)
		}
	}

	lat := make([]time.Duration, b.N)
	errs := make(chan error, echoClients)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	from := 0
	for i, ws := range conns {
		n := b.N / echoClients
		if i < b.N%echoClients {
			n++
		}
		mine := lat[from : from+n]
		from += n
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range mine {
				t0 := time.Now()
				if err := echo(ws); err != nil {
					errs <- err
					return
				}
				mine[j] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "echoes/s")
	b.ReportMetric(micros(percentile(lat, 0.50)), "p50-µs")
	b.ReportMetric(micros(percentile(lat, 0.99)), "p99-µs")
}

// echo sends echoPayload and reads it back.
func echo(ws *websocket.Conn) error {
	if err := ws.WriteMessage(websocket.TextMessage, echoPayload); err != nil {
		return err
	}
	_, p, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if len(p) != len(echoPayload) {
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
