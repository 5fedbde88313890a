package sse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// BenchmarkRoundTrip measures one client's message-to-echo round trip on
// loopback, one message in flight at a time, over each transport of an
// echo route: WebSocket (a frame each way), SSE (a POST up, an event down
// the open stream) and long-polling (a POST up, a poll down). It reports
// the median and 99th percentile latency and the round trips per second.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("websocket", benchRTTWebSocket)
	b.Run("sse", benchRTTSSE)
	b.Run("longpoll", benchRTTLongPoll)
}

// rttEcho sends every message back.
var rttEcho = realtime.Funcs{
	OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
}

// rttServer serves an echo route over transport k on loopback until the
// benchmark ends.
func rttServer(b *testing.B, k realtime.Kind) string {
	t := map[realtime.Kind]realtime.Transport{
		realtime.WebSocket: rtws.New(rtws.Options{}),
		realtime.SSE:       sse.New(sse.Options{}),
		realtime.LongPoll:  longpoll.New(longpoll.Options{}),
	}[k]
	route := realtime.NewRoute(rttEcho, &realtime.Options{
		Transports: []realtime.Transport{t},
		Logger:     discard(),
	})
	srv := httptest.NewServer(route)
	b.Cleanup(srv.Close)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := route.Shutdown(ctx); err != nil {
			b.Error("shutdown:", err)
		}
	})
	return srv.URL
}

// rttMessage is the text of message i: distinct, so that an echo cannot be
// mistaken for another.
func rttMessage(i int) []byte {
	return strconv.AppendInt([]byte(benchPayload[:48]), int64(i), 10)
}

// rttRun times b.N calls of roundTrip and reports the latencies.
func rttRun(b *testing.B, roundTrip func(i int) error) {
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := roundTrip(i); err != nil {
			b.Fatalf("round trip %d: %v", i, err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(lat)
	us := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rtt/s")
}

func benchRTTWebSocket(b *testing.B) {
	url := rttServer(b, realtime.WebSocket)
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := dialer.Dial("ws"+strings.TrimPrefix(url, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	// Closing the TCP connection ends the server's read loop, and with it
	// the connection, before the route shuts down.
	b.Cleanup(func() { ws.Close() })
	deadline := time.Now().Add(benchDeadline)
	ws.SetReadDeadline(deadline)
	ws.SetWriteDeadline(deadline)
	rttRun(b, func(i int) error {
		msg := rttMessage(i)
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
		mt, got, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if mt != websocket.TextMessage || !bytes.Equal(got, msg) {
			return errUnexpected("echo", got)
		}
		return nil
	})
}

func benchRTTSSE(b *testing.B) {
	url := rttServer(b, realtime.SSE)
	client := benchClient(b)
	client.Timeout = benchDeadline // the POSTs; the stream has its own
	resp := benchGet(b, client, url+"/?transport=sse")
	r := sse.NewReader(resp.Body)
	ev, err := r.Next()
	if err != nil || ev.Type != sse.EventSession {
		b.Fatalf("first event %q, %v", ev.Type, err)
	}
	var sess struct{ Token string }
	if err := json.Unmarshal(ev.Data, &sess); err != nil || sess.Token == "" {
		b.Fatalf("session event %q: %v", ev.Data, err)
	}
	rttRun(b, func(i int) error {
		msg := rttMessage(i)
		if err := rttPost(client, url, sess.Token, i+1, msg); err != nil {
			return err
		}
		// The echo may have been streamed before or after the 204: it
		// waits in the connection either way.
		ev, err := r.Next()
		if err != nil {
			return err
		}
		if ev.Type != "message" || !bytes.Equal(ev.Data, msg) {
			return errUnexpected(ev.Type, ev.Data)
		}
		return nil
	})
}

func benchRTTLongPoll(b *testing.B) {
	url := rttServer(b, realtime.LongPoll)
	client := benchClient(b)
	client.Timeout = benchDeadline
	resp, err := client.Post(url+"/?transport=longpoll", "text/plain", nil)
	if err != nil {
		b.Fatal(err)
	}
	var opened struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&opened)
	resp.Body.Close()
	if err != nil || opened.Token == "" {
		b.Fatalf("open: %s, %v", resp.Status, err)
	}
	var ack uint64
	var p longpoll.Poll
	rttRun(b, func(i int) error {
		msg := rttMessage(i)
		if err := rttPost(client, url, opened.Token, i+1, msg); err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/?transport=longpoll", nil)
		req.Header.Set(realtime.HeaderToken, opened.Token)
		req.Header.Set(longpoll.HeaderAck, strconv.FormatUint(ack, 10))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		p = longpoll.Poll{}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || len(p.Messages) != 1 || p.Messages[0].Data != string(msg) {
			return errUnexpected(resp.Status, p)
		}
		ack = p.Messages[0].Seq
		return nil
	})
	// Close the session now: a detached one would wait ResumeWindow.
	req, _ := http.NewRequest(http.MethodDelete, url+"/", nil)
	req.Header.Set(realtime.HeaderToken, opened.Token)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// rttPost sends msg as message seq of the session token.
func rttPost(client *http.Client, url, token string, seq int, msg []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(msg))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(realtime.HeaderToken, token)
	req.Header.Set(realtime.HeaderSeq, strconv.Itoa(seq))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return errUnexpected(resp.Status, body)
	}
	return nil
}

type unexpectedError struct {
	what string
	got  any
}

func errUnexpected(what string, got any) error { return unexpectedError{what, got} }

func (e unexpectedError) Error() string {
	if b, ok := e.got.([]byte); ok {
		return "unexpected " + e.what + ": " + strconv.Quote(string(b))
	}
	j, _ := json.Marshal(e.got)
	return "unexpected " + e.what + ": " + string(j)
}
