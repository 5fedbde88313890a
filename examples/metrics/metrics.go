package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// topic is where samples are published.
const topic = "metrics"

// sample is one set of figures, published as the data of a topic envelope:
//
//	{"topic":"metrics","seq":7,"data":"{\"time\":...,\"cpu\":3.2,...}"}
type sample struct {
	Time       time.Time `json:"time"`
	CPU        float64   `json:"cpu"`             // process CPU since the last sample, % of one core
	CPUs       int       `json:"cpus"`            // so CPU is at most 100*CPUs
	HeapMB     float64   `json:"heapMB"`          // live Go heap (HeapAlloc)
	SysMB      float64   `json:"sysMB"`           // memory the Go runtime got from the OS
	Goroutines int       `json:"goroutines"`      // including one per connection or two
	Load1      *float64  `json:"load1,omitempty"` // host load average over a minute; absent without /proc
}

// sampler turns cumulative process CPU time into a percentage over the
// time since its previous sample.
type sampler struct {
	now      func() time.Time
	cpuTime  func() time.Duration // user+system CPU time of the process so far
	memStats func(*runtime.MemStats)
	loadavg  func() (float64, bool)

	prevCPU  time.Duration
	prevWall time.Time
}

// newSampler returns a sampler of this process and host.
func newSampler() *sampler {
	s := &sampler{now: time.Now, cpuTime: processCPUTime, memStats: runtime.ReadMemStats, loadavg: readLoadavg}
	s.prevCPU, s.prevWall = s.cpuTime(), s.now()
	return s
}

// sample reads the figures now.
func (s *sampler) sample() sample {
	now, cpu := s.now(), s.cpuTime()
	cpus := runtime.NumCPU()
	var pct float64
	if wall := now.Sub(s.prevWall); wall > 0 {
		pct = 100 * float64(cpu-s.prevCPU) / float64(wall)
		// The two clocks are read a few instructions apart: keep the
		// figure within what the machine can do.
		pct = min(max(pct, 0), 100*float64(cpus))
	}
	s.prevCPU, s.prevWall = cpu, now

	var ms runtime.MemStats
	s.memStats(&ms)
	out := sample{
		Time:       now.UTC(),
		CPU:        round(pct, 1),
		CPUs:       cpus,
		HeapMB:     round(float64(ms.HeapAlloc)/(1<<20), 2),
		SysMB:      round(float64(ms.Sys)/(1<<20), 2),
		Goroutines: runtime.NumGoroutine(),
	}
	if l, ok := s.loadavg(); ok {
		out.Load1 = &l
	}
	return out
}

func round(x float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return p
}

// readLoadavg reads the one-minute load average of a Linux host.
func readLoadavg() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return l, err == nil
}

// publish samples every interval and publishes on topic until ctx ends.
func publish(ctx context.Context, ts *topics.Topics, every time.Duration, s *sampler) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, _ := json.Marshal(s.sample())
		if _, err := ts.Publish(ctx, topic, realtime.Text(string(b))); err != nil && ctx.Err() == nil {
			slog.Warn("metrics: publish", "err", err)
		}
	}
}

// newDashboard returns the handler of /metrics: a dashboard subscribes in
// Open and first receives the samples still in the topic's history (the
// last minute), then every new one. Nothing to do on close: Topics
// unsubscribes a closed connection. Dashboards send nothing; the route's
// small ReadLimit bounds what they could.
func newDashboard(ts *topics.Topics) realtime.Handler {
	return realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			return ts.Resume(c, topic, 0)
		},
	}
}
