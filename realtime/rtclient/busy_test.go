package rtclient_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
)

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush()               { http.NewResponseController(w.ResponseWriter).Flush() }
func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

var server = map[realtime.Kind]realtime.Transport{
	realtime.SSE:      sse.New(sse.Options{}),
	realtime.LongPoll: longpoll.New(longpoll.Options{}),
}

// A POST refused with 429 because the handler is behind is sent again,
// with the same sequence number, after Retry-After: every message is
// handled once and in order, and nothing reconnects.
func TestBusyServerIsRetried(t *testing.T) {
	for _, kind := range []realtime.Kind{realtime.SSE, realtime.LongPoll} {
		t.Run(string(kind), func(t *testing.T) {
			release := make(chan struct{})
			var mu sync.Mutex
			var got []string
			handled := make(chan struct{}, 16)
			rt := realtime.NewRoute(realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
				if m.Text() == "0" {
					<-release
				}
				mu.Lock()
				got = append(got, m.Text())
				mu.Unlock()
				handled <- struct{}{}
				return nil
			}}, &realtime.Options{Transports: []realtime.Transport{server[kind]}, Inbox: 1})
			refused := make(chan struct{}, 16)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sw := &statusWriter{ResponseWriter: w}
				rt.ServeHTTP(sw, r)
				if sw.status == http.StatusTooManyRequests {
					refused <- struct{}{}
				}
			}))
			defer ts.Close()
			defer rt.Shutdown(testContext(t))

			ctx := testContext(t)
			c := dial(t, ts.URL, fastOptions(kind))
			const n = 4
			sent := make(chan error, 1)
			go func() {
				for i := range n {
					if err := c.Send(ctx, realtime.Text(strconv.Itoa(i))); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			recv(t, refused) // "2" met a full inbox: "0" is held, "1" waits
			close(release)
			if err := recv(t, sent); err != nil {
				t.Fatal(err)
			}
			for range n {
				recv(t, handled)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, m := range got {
				if m != strconv.Itoa(i) {
					t.Fatalf("handled %v, want 0..%d once each in order", got, n-1)
				}
			}
			if c.Transport() != kind {
				t.Fatalf("transport %v", c.Transport())
			}
		})
	}
}
