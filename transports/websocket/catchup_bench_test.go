package websocket_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// catchUpMessages is how many messages each side delivers.
const catchUpMessages = 10000

// BenchmarkCatchUp measures how long a WebSocket client takes to receive
// 10,000 topic messages replayed from the history on join ("history")
// against the same 10,000 published while it is subscribed ("live"), the
// two taking turns round by round on loopback. It reports the median time
// of each and the median ratio history/live with its range: the replay is
// paced by the client's reading, not pushed into the send queue, and
// should cost about what live delivery does. The send queue is deep
// enough for the live burst (a burst beyond it meets the overflow policy;
// a replay never does).
//
//	go test -run XXX -bench CatchUp -benchtime 5x ./transports/websocket/
func BenchmarkCatchUp(b *testing.B) {
	ts := topics.New(topics.NewMemoryBroker(&topics.MemoryOptions{History: catchUpMessages}))
	rt := realtime.NewRoute(realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		topic, after, _ := strings.Cut(m.Text(), " ")
		n, _ := strconv.ParseUint(after, 10, 64)
		return ts.Resume(c, topic, n)
	}}, &realtime.Options{
		Transports: []realtime.Transport{rtws.New(rtws.Options{})},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Deep enough for the live burst: live messages meet the overflow
		// policy, a replay does not.
		SendQueue: 2 * catchUpMessages,
	})
	srv := httptest.NewServer(rt)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
		srv.Close()
	}()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := context.Background()
	payload := realtime.Text(strings.Repeat("x", 64))

	receive := func(ws *websocket.Conn) error {
		for range catchUpMessages {
			if _, _, err := ws.ReadMessage(); err != nil {
				return err
			}
		}
		return nil
	}
	dial := func(topic string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		return ws
	}
	var hist, live, ratios []float64
	for i := 0; b.Loop(); i++ {
		// History: publish, then join from 0.
		topic := fmt.Sprint("h", i)
		for range catchUpMessages {
			ts.Publish(ctx, topic, payload)
		}
		ws := dial(topic)
		t0 := time.Now()
		ws.WriteMessage(websocket.TextMessage, []byte(topic+" 0"))
		if err := receive(ws); err != nil {
			b.Fatal(err)
		}
		h := time.Since(t0)
		closeClient(ws)

		// Live: join, then publish.
		topic = fmt.Sprint("l", i)
		ws = dial(topic)
		ws.WriteMessage(websocket.TextMessage, []byte(topic+" 0"))
		ts.Publish(ctx, topic, realtime.Text("first")) // the subscription is up once this arrives
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		done := make(chan error, 1)
		go func() { done <- receive(ws) }()
		for range catchUpMessages {
			ts.Publish(ctx, topic, payload)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		l := time.Since(t0)
		closeClient(ws)

		hist, live = append(hist, float64(h.Microseconds())/1000), append(live, float64(l.Microseconds())/1000)
		ratios = append(ratios, h.Seconds()/l.Seconds())
	}
	b.ReportMetric(median(hist), "history-ms")
	b.ReportMetric(median(live), "live-ms")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}
