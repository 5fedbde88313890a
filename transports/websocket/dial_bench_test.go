package websocket_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// connectRounds is how many times each side is measured, in turn.
const connectRounds = 6

// BenchmarkConnect measures opening a connection (handshake to a first
// echo) and closing it cleanly, one at a time, rtkit against the raw
// gorilla baseline, the two taking turns round by round (b.N connections
// each per round). It reports the median ratio of rtkit's time per
// connection to gorilla's and its range, and the process CPU per
// connection of each (client and server share the process here; compare
// measures them apart).
//
//	go test -run XXX -bench Connect -benchtime 2000x ./transports/websocket/
func BenchmarkConnect(b *testing.B) {
	gsrv, wait := newGorillaEcho()
	defer func() { gsrv.Close(); wait() }()
	rt := realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
	}, &realtime.Options{
		Transports: []realtime.Transport{rtws.New(rtws.Options{})},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		QuietClose: true,
	})
	rsrv := httptest.NewServer(rt)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
		rsrv.Close()
	}()
	var ratios, cpuRatios, gTimes, rTimes []float64
	b.ResetTimer()
	for range connectRounds {
		gt, gc := connectRound(b, gsrv, b.N)
		rt, rc := connectRound(b, rsrv, b.N)
		ratios, cpuRatios = append(ratios, rt/gt), append(cpuRatios, rc/gc)
		gTimes, rTimes = append(gTimes, gt), append(rTimes, rt)
	}
	b.StopTimer()
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(median(gTimes), "gorilla-µs/conn")
	b.ReportMetric(median(rTimes), "rtkit-µs/conn")
}

// connectRound opens and closes n connections to srv one at a time and
// returns the wall and process CPU time per connection, in µs.
func connectRound(b *testing.B, srv *httptest.Server, n int) (wall, cpu float64) {
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	msg := []byte("hello")
	c0 := cpuTime()
	t0 := time.Now()
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		ws.WriteMessage(websocket.TextMessage, msg)
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		closeClient(ws)
	}
	wall = float64(time.Since(t0).Microseconds()) / float64(n)
	cpu = float64((cpuTime() - c0).Microseconds()) / float64(n)
	return wall, cpu
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
