package main

import (
	"net/http"
	"sync"

	r3sse "github.com/r3labs/sse/v2"
	gosse "github.com/tmaxmax/go-sse"

	"github.com/rtkit/rtkit/realtime"
	rtsse "github.com/rtkit/rtkit/transports/sse"
)

// sseStream is the one stream name or topic of the SSE servers; clients
// ask for it as ?stream=s, which the servers without streams ignore.
const sseStream = "s"

// newNetHTTP is the minimal SSE baseline, a bare stream: a net/http
// handler that sends the headers, then writes and flushes "data: ...\n\n"
// for each message.
func newNetHTTP(string) (*server, error) {
	var (
		mu      sync.Mutex
		streams = map[chan pushCmd]struct{}{}
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		f.Flush()
		cmds := make(chan pushCmd, 16)
		mu.Lock()
		streams[cmds] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(streams, cmds)
			mu.Unlock()
		}()
		for {
			select {
			case cmd := <-cmds:
				event := append(append([]byte("data: "), cmd.msg...), "\n\n"...)
				for range cmd.n {
					if _, err := w.Write(event); err != nil {
						return
					}
					f.Flush()
				}
			case <-r.Context().Done():
				return
			}
		}
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(streams)
	}
	push := func(n int, msg []byte) {
		mu.Lock()
		defer mu.Unlock()
		for s := range streams {
			s <- pushCmd{n: n, msg: msg}
		}
	}
	return &server{handler: h, conns: count, push: push}, nil
}

type pushCmd struct {
	n   int
	msg []byte
}

// newRtkitSSE is an rtkit route on the SSE transport with its default
// options, except that the connection caps are off and Overflow is
// OverflowBlock, so that a producer faster than the reader waits for room
// instead of closing the stream (the other servers block by nature).
// Push is Conn.Send, n times.
func newRtkitSSE(string) (*server, error) {
	rt := realtime.NewRoute(realtime.Funcs{}, &realtime.Options{
		MaxConns: -1, MaxConnsPerClient: -1,
		Transports: []realtime.Transport{rtsse.New(rtsse.Options{})},
		Overflow:   realtime.OverflowBlock,
		Logger:     quietLogger(),
	})
	push := func(n int, msg []byte) {
		m := realtime.Text(string(msg))
		for _, c := range rt.Conns() {
			for range n {
				if err := c.Send(m); err != nil {
					break
				}
			}
		}
	}
	return &server{handler: rt, conns: rt.Len, push: push}, nil
}

// newR3labs is r3labs/sse/v2's server with its defaults but AutoReplay
// off (no event log: the other servers keep none), one stream, one
// Publish per message.
func newR3labs(string) (*server, error) {
	var live counter
	r3 := r3sse.NewWithCallback(
		func(string, *r3sse.Subscriber) { live.add(1) },
		func(string, *r3sse.Subscriber) { live.add(-1) },
	)
	r3.AutoReplay = false
	r3.CreateStream(sseStream)
	push := func(n int, msg []byte) {
		for range n {
			r3.Publish(sseStream, &r3sse.Event{Data: msg})
		}
	}
	return &server{handler: r3, conns: live.get, push: push}, nil
}

// newGoSSE is tmaxmax/go-sse's zero Server (its default provider, Joe),
// one Publish per message to the default topic.
func newGoSSE(string) (*server, error) {
	s := &gosse.Server{}
	var live counter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		live.add(1)
		defer live.add(-1)
		s.ServeHTTP(w, r)
	})
	push := func(n int, msg []byte) {
		m := &gosse.Message{}
		m.AppendData(string(msg))
		for range n {
			if err := s.Publish(m); err != nil {
				return
			}
		}
	}
	return &server{handler: h, conns: live.get, push: push}, nil
}
