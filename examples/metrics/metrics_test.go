package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// CPU % is the CPU time used between two samples over the wall time.
func TestSamplerCPU(t *testing.T) {
	wall := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cpu := time.Duration(0)
	s := &sampler{
		now:      func() time.Time { return wall },
		cpuTime:  func() time.Duration { return cpu },
		memStats: func(ms *runtime.MemStats) { ms.HeapAlloc = 3 << 20 },
		loadavg:  func() (float64, bool) { return 0.5, true },
		prevWall: wall,
	}
	wall, cpu = wall.Add(time.Second), 250*time.Millisecond
	got := s.sample()
	if got.CPU != 25 || got.HeapMB != 3 || got.Load1 == nil || *got.Load1 != 0.5 {
		t.Fatalf("got %+v", got)
	}
	wall, cpu = wall.Add(500*time.Millisecond), cpu+time.Second // two cores busy
	if got := s.sample(); got.CPU != min(200, 100*float64(runtime.NumCPU())) {
		t.Fatalf("cpu %v", got.CPU)
	}
}

// The real figures are plausible.
func TestSamplerReal(t *testing.T) {
	s := newSampler()
	for i := 0; i < 1e4; i++ { // burn a little CPU
		_ = strings.Repeat("x", i%64)
	}
	checkSample(t, s.sample())
}

func checkSample(t *testing.T, s sample) {
	t.Helper()
	if s.HeapMB <= 0 || s.SysMB < s.HeapMB || s.CPU < 0 || s.CPU > 100*float64(runtime.NumCPU()) ||
		s.CPUs != runtime.NumCPU() || s.Goroutines < 1 || s.Time.IsZero() {
		t.Fatalf("implausible sample %+v", s)
	}
}

// A dashboard in memory: the history first, then live samples.
func TestDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: history}))
	for i := 1; i <= 3; i++ {
		ts.Publish(ctx, topic, realtime.Text(`{"cpu":`+string(rune('0'+i))+`}`))
	}
	c, err := realtimetest.Dial(newDashboard(ts), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(realtime.CloseNormal, "")
	ts.Publish(ctx, topic, realtime.Text(`{"cpu":4}`))
	for i := 1; i <= 4; i++ {
		var env topics.Envelope
		if err := c.ReceiveJSON(ctx, &env); err != nil {
			t.Fatal(err)
		}
		if env.Topic != topic || env.Seq != uint64(i) || env.Data == nil || *env.Data != `{"cpu":`+string(rune('0'+i))+`}` {
			t.Fatalf("envelope %d: %+v", i, env)
		}
	}
}

// The program: two dashboards, one over WebSocket and one over SSE, see
// the same samples under the same sequence numbers, with no gaps.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", 20*time.Millisecond, func(u string) { urls <- u }) }()
	base := <-urls

	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "/rtkit/rtkit.js") {
		t.Fatalf("page: %s", resp.Status)
	}

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	type seen map[uint64]string
	dashboard := func(k realtime.Kind) (*rtclient.Conn, func(until uint64) seen) {
		c, err := rtclient.Dial(rctx, base+"metrics", &rtclient.Options{Transports: []realtime.Kind{k}})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if c.Transport() != k {
			t.Fatalf("on %s, want %s", c.Transport(), k)
		}
		got := seen{}
		var last uint64
		// read returns what arrived up to seq until, checking order.
		read := func(until uint64) seen {
			for last < until {
				var env topics.Envelope
				m, err := c.Receive(rctx)
				if err == nil {
					err = json.Unmarshal(m.Data, &env)
				}
				if err == nil && env.Gap != nil && last == 0 {
					continue // the history no longer reached back to seq 1
				}
				if err != nil || env.Topic != topic || env.Data == nil {
					t.Fatalf("%s: %+v, %v", k, env, err)
				}
				if last != 0 && env.Seq != last+1 {
					t.Fatalf("%s: seq %d after %d", k, env.Seq, last)
				}
				last = env.Seq
				var s sample
				if err := json.Unmarshal([]byte(*env.Data), &s); err != nil {
					t.Fatal(err)
				}
				checkSample(t, s)
				got[env.Seq] = *env.Data
			}
			return got
		}
		read(1)
		return c, read
	}
	ws, readWS := dashboard(realtime.WebSocket)
	defer ws.Close(realtime.CloseNormal, "")
	sse, readSSE := dashboard(realtime.SSE)
	defer sse.Close(realtime.CloseNormal, "")

	// Both replayed the history, so both start at seq 1 unless it had
	// already moved past it; read until both have a few live samples.
	a := readWS(0)
	var until uint64
	for seq := range a {
		until = max(until, seq)
	}
	until += 5
	a, b := readWS(until), readSSE(until)
	common := 0
	for seq, data := range a {
		if other, ok := b[seq]; ok {
			common++
			if other != data {
				t.Fatalf("seq %d: %s over WebSocket, %s over SSE", seq, data, other)
			}
		} else if seq >= minKey(b) {
			t.Fatalf("seq %d missing over SSE", seq)
		}
	}
	if common < 5 {
		t.Fatalf("only %d samples in common", common)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func minKey[V any](m map[uint64]V) uint64 {
	k := ^uint64(0)
	for s := range m {
		k = min(k, s)
	}
	return k
}
