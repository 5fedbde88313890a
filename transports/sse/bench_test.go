package sse_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	r3sse "github.com/r3labs/sse/v2"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/sse"
)

// benchPayload is the ~64-byte text every push benchmark sends per event.
var benchPayload = strings.Repeat("0123456789abcdef", 4)

// benchDeadline bounds every benchmark run: a stalled stream fails the
// benchmark instead of hanging it.
const benchDeadline = 2 * time.Minute

// BenchmarkPush measures server-to-client throughput on loopback: one
// client reads one stream with sse.Reader and counts b.N events of
// benchPayload. The sub-benchmarks differ only in the server:
//
//   - nethttp: a minimal hand-written net/http loop (write, Flush, per event);
//   - r3labs: github.com/r3labs/sse/v2's server, one Publish per event;
//   - rtkit: a realtime route over SSE, one Conn.Send per event, with a
//     session backlog (ResumeBuffer) that holds all b.N events, so the
//     producer is never refused;
//   - rtkit-paced: the same with the default backlog (256), the producer
//     kept fewer than 256 events ahead of what the client has parsed by an
//     in-process credit, as OverflowBlock would do if it paced SSE (see
//     benchPushRtkit).
//
// Setup (listening, connecting, the first bytes of the stream) and teardown
// are outside the timer; the timed part starts the producer and ends when
// the client has parsed the b.N-th event.
func BenchmarkPush(b *testing.B) {
	b.Run("nethttp", benchPushNetHTTP)
	b.Run("r3labs", benchPushR3labs)
	b.Run("rtkit", func(b *testing.B) { benchPushRtkit(b, 0) })
	b.Run("rtkit-paced", func(b *testing.B) { benchPushRtkit(b, realtime.DefaultSendQueue) })
}

// benchClient returns an HTTP client of its own, whose connections are
// closed when the benchmark ends (goleak runs after the benchmarks).
func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchGet opens a stream at url. The request is cancelled, its body
// closed, at cleanup or when benchDeadline passes.
func benchGet(b *testing.B, client *http.Client, url string) *http.Response {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %s", resp.Status)
	}
	return resp
}

// benchCount reads events until it has counted n "message" events carrying
// benchPayload. Any other event fails the benchmark. counted, if set, is
// told the count every 64 events.
func benchCount(b *testing.B, r *sse.Reader, n int, counted func(int)) {
	b.Helper()
	for got := 0; got < n; {
		ev, err := r.Next()
		if err != nil {
			b.Fatalf("after %d of %d events: %v", got, n, err)
		}
		if ev.Type != "message" || len(ev.Data) != len(benchPayload) {
			b.Fatalf("event %d: type %q, %d bytes of data: %q", got, ev.Type, len(ev.Data), ev.Data)
		}
		got++
		if counted != nil && got%64 == 0 {
			counted(got)
		}
	}
}

// benchPushTimed runs the timed part: start releases the producer, and the
// benchmark goroutine counts the events.
func benchPushTimed(b *testing.B, r *sse.Reader, start func(), counted func(int)) {
	b.ReportAllocs()
	b.ResetTimer()
	start()
	benchCount(b, r, b.N, counted)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchPushNetHTTP(b *testing.B) {
	n := b.N
	start := make(chan struct{})
	event := []byte("data: " + benchPayload + "\n\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		f.Flush()
		select {
		case <-start:
		case <-r.Context().Done():
			return
		}
		for range n {
			if _, err := w.Write(event); err != nil {
				return
			}
			f.Flush()
		}
		<-r.Context().Done() // the client hangs up when it has counted
	}))
	b.Cleanup(srv.Close)
	resp := benchGet(b, benchClient(b), srv.URL+"/")
	benchPushTimed(b, sse.NewReader(resp.Body), func() { close(start) }, nil)
}

func benchPushR3labs(b *testing.B) {
	subscribed := make(chan struct{}, 1)
	unsubscribed := make(chan struct{}, 1)
	server := r3sse.NewWithCallback(
		func(string, *r3sse.Subscriber) { subscribed <- struct{}{} },
		func(string, *r3sse.Subscriber) { unsubscribed <- struct{}{} },
	)
	server.AutoReplay = false // no event log: a plain fan-out, like the others
	server.CreateStream("bench")
	srv := httptest.NewServer(server)
	// Teardown order matters: r3labs deregisters a subscriber through its
	// stream's goroutine, so the client hangs up and the deregistration
	// completes before the streams close; otherwise the request's watcher
	// goroutine blocks for ever.
	payload := []byte(benchPayload)
	n := b.N
	start, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-start:
		case <-stop:
			return
		}
		// Publish blocks while the stream's buffer is full, and returns
		// once the server is closed: lossless with one subscriber, which
		// the client checks by counting.
		for range n {
			server.Publish("bench", &r3sse.Event{Data: payload})
		}
	}()
	b.Cleanup(srv.Close)
	b.Cleanup(func() { close(stop); <-done })
	b.Cleanup(func() {
		select {
		case <-unsubscribed:
		case <-time.After(benchDeadline):
			b.Error("r3labs: subscriber not removed")
		}
		server.Close()
	})
	resp := benchGet(b, benchClient(b), srv.URL+"/?stream=bench") // cleaned up first
	// The handler registers the subscriber before it sends the headers, so
	// it is registered by now; OnSubscribe confirms it.
	select {
	case <-subscribed:
	case <-time.After(benchDeadline):
		b.Fatal("r3labs: no subscriber")
	}
	benchPushTimed(b, sse.NewReader(resp.Body), func() { close(start) }, nil)
}

// benchPushRtkit pushes b.N events over a realtime route. With window 0
// the session's backlog holds every event. Otherwise the backlog keeps its
// default size, window, and the producer waits for credit whenever it is
// window-64 events ahead of the client: OverflowBlock does not pace a
// session (session.Write refuses a full backlog and the connection closes
// with 1008), so without the credit a fast producer is cut off after a few
// hundred events.
func benchPushRtkit(b *testing.B, window int) {
	n := b.N
	start := make(chan struct{})
	msg := realtime.Text(benchPayload) // shared: Send does not modify it
	sent := make(chan error, 1)
	var received atomic.Int64
	credit := make(chan struct{}, 1)
	var counted func(int)
	opts := &realtime.Options{
		Transports: []realtime.Transport{sse.New(sse.Options{})},
		Overflow:   realtime.OverflowBlock,
		Logger:     discard(),
	}
	if window == 0 {
		opts.ResumeBuffer = n + 1
		opts.SendQueueBytes = (n + 1) * len(benchPayload)
	} else {
		opts.ResumeBuffer = window
		counted = func(got int) {
			received.Store(int64(got))
			select {
			case credit <- struct{}{}:
			default:
			}
		}
	}
	route := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			c.Go(func(ctx context.Context) error {
				select {
				case <-start:
				case <-ctx.Done():
					sent <- ctx.Err()
					return nil
				}
				for i := range n {
					// The client has parsed (so the session has
					// delivered) at least received events: fewer than
					// window-64 are undelivered, and the backlog never
					// overflows.
					for window > 0 && int64(i)-received.Load() >= int64(window-64) {
						select {
						case <-credit:
						case <-ctx.Done():
							sent <- ctx.Err()
							return nil
						}
					}
					if err := c.Send(msg); err != nil {
						sent <- err
						return err
					}
				}
				sent <- nil
				return nil
			})
			return nil
		},
	}, opts)
	srv := httptest.NewServer(route)
	b.Cleanup(srv.Close)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := route.Shutdown(ctx); err != nil {
			b.Error("shutdown:", err)
		}
	})
	resp := benchGet(b, benchClient(b), srv.URL+"/?transport=sse")
	r := sse.NewReader(resp.Body)
	if ev, err := r.Next(); err != nil || ev.Type != sse.EventSession {
		b.Fatalf("first event %q, %v", ev.Type, err)
	}
	benchPushTimed(b, r, func() { close(start) }, counted)
	if err := <-sent; err != nil {
		b.Fatal("producer:", err)
	}
}
