package rtclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// fuzzOptions make a client that tries one transport once and never
// reconnects: each input is one connection.
func fuzzOptions(k realtime.Kind) *rtclient.Options {
	return &rtclient.Options{
		Transports:  []realtime.Kind{k},
		NoNegotiate: true,
		MaxRetries:  -1,
		Reconnect:   func(*realtime.CloseError) bool { return false },
	}
}

// finalClose drains c until Receive returns the *realtime.CloseError that
// ended it, and checks that what it reports is a close a peer may see: a
// code in 1000-4999 and a UTF-8 reason that fits a close frame.
func finalClose(t *testing.T, c *rtclient.Conn) *realtime.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := c.Receive(ctx)
		if err == nil || errors.Is(err, rtclient.ErrGap) {
			continue
		}
		var ce *realtime.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("Receive: %v", err)
		}
		if ce.Code < 1000 || ce.Code > 4999 || len(ce.Reason) > 123 || !utf8.ValidString(ce.Reason) {
			t.Fatalf("close %d %q", ce.Code, ce.Reason)
		}
		return ce
	}
}

// FuzzServerCloseFrame has a server end a WebSocket with a close frame of
// any payload. A valid one (a code a server may send, a UTF-8 reason)
// reaches Receive as it is; an empty one is 1005; anything else is the
// server breaking the protocol, which the client reports as an abnormal
// close, never as the bogus code.
func FuzzServerCloseFrame(f *testing.F) {
	for _, code := range []int{1000, 1001, 1005, 1006, 1011, 1012, 1014, 1015, 2999, 3000, 4999, 5000} {
		f.Add(binary.BigEndian.AppendUint16(nil, uint16(code)), []byte("bye"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x03}, []byte{})
	f.Add([]byte{0x03, 0xe8}, []byte("\xff"))
	f.Add([]byte{0x03, 0xe8}, bytes.Repeat([]byte("r"), 124))
	payloads := make(chan []byte, 1)
	up := websocket.Upgrader{Subprotocols: []string{realtime.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		p := <-payloads
		frame := append([]byte{0x88, byte(len(p))}, p...)
		if len(p) > 125 {
			frame = append(binary.BigEndian.AppendUint16([]byte{0x88, 126}, uint16(len(p))), p...)
		}
		ws.NetConn().Write(frame)
		ws.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, ws.NetConn()) // until the client has gone
	}))
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		payload := append(head, tail...)
		if len(payload) > 300 {
			payload = payload[:300]
		}
		payloads <- payload
		c, err := rtclient.Dial(context.Background(), srv.URL, fuzzOptions(realtime.WebSocket))
		if err != nil {
			<-payloads
			t.Fatal(err)
		}
		defer c.Close(realtime.CloseNormal, "")
		ce := finalClose(t, c)
		switch {
		case len(payload) == 0:
			if ce.Code != realtime.CloseNoStatus {
				t.Fatalf("empty close: %v", ce)
			}
		case len(payload) >= 2 && len(payload) <= 125:
			code, reason := int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			valid := (code >= 1000 && code <= 1013 && code != 1004 && code != 1005 && code != 1006 || code >= 3000 && code <= 4999) && utf8.ValidString(reason)
			if valid && (ce.Code != code || ce.Reason != reason) {
				t.Fatalf("close %d %q: got %v", code, reason, ce)
			}
			if !valid && ce.Code == code && code != realtime.CloseAbnormal {
				t.Fatalf("invalid close %d %q reported as it is", code, reason)
			}
		}
	})
}

// pollServer answers a long-polling client from a RoundTripper: the open
// with a token, the first poll with the fuzzed body, later polls not
// until the client gives up (and it signals that one came: the first
// answer is then fully handled), the close with 204.
type pollServer struct {
	body    []byte
	polls   atomic.Int32
	again   chan struct{}
	deleted chan struct{} // closed by the client's DELETE
	once    sync.Once
}

func (s *pollServer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: r}
	switch {
	case r.Method == http.MethodPost && r.URL.Query().Get("transport") == "longpoll":
		resp.StatusCode = http.StatusOK
		resp.Body = io.NopCloser(strings.NewReader(`{"id":"c","token":"tok","transport":"longpoll"}`))
	case r.Method == http.MethodDelete:
		s.once.Do(func() { close(s.deleted) })
	case r.Method == http.MethodGet:
		if s.polls.Add(1) > 1 {
			select {
			case s.again <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
				return nil, r.Context().Err()
			case <-s.deleted: // the client closes: the poll answers the close
				resp.StatusCode = http.StatusOK
				resp.Body = io.NopCloser(strings.NewReader(`{"messages":[],"close":{"code":1000,"reason":""}}`))
				return resp, nil
			}
		}
		resp.StatusCode = http.StatusOK
		resp.Header.Set("Content-Type", "application/json")
		resp.Body = io.NopCloser(bytes.NewReader(s.body))
	}
	return resp, nil
}

// FuzzPoll feeds the client's long-poll decoding (the answer to a poll,
// which whatever answers for the server writes) arbitrary bytes. It must
// not panic. What Receive returns comes from the answer, in its order:
// texts as they are, binaries decoded from base64; a close ends the
// connection with a code a peer may see. An answer that is not JSON
// delivers nothing.
func FuzzPoll(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"seq":1,"type":"text","data":"hi"},{"seq":2,"type":"binary","data":"AAE="}]}`,
		`{"messages":[],"gap":{"after":3}}`,
		`{"messages":[{"seq":1,"type":"text","data":"bye"}],"close":{"code":4001,"reason":"bye"}}`,
		`{"messages":null,"close":{"code":0,"reason":""}}`,
		`{"close":{"code":-1,"reason":"\ud800"}}`,
		`{"close":{"code":70000,"reason":"` + strings.Repeat("r", 300) + `"}}`,
		`{"messages":[{"seq":2,"type":"text","data":"b"},{"seq":1,"type":"text","data":"a"}]}`,
		`{"messages":[{"seq":1,"type":"binary","data":"!!"}]}`,
		`{"messages":[{"type":"text","data":"no seq"}]}`,
		`{"messages":"x"}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := &pollServer{body: body, again: make(chan struct{}, 1), deleted: make(chan struct{})}
		o := fuzzOptions(realtime.LongPoll)
		o.HTTPClient = &http.Client{Transport: s}
		c, err := rtclient.Dial(context.Background(), "http://route.example/", o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(realtime.CloseNormal, "")
		var p longpoll.Poll
		valid := json.NewDecoder(bytes.NewReader(body)).Decode(&p) == nil
		var want []realtime.Message
		for _, m := range p.Messages {
			if m.Type == "binary" {
				b, err := base64.StdEncoding.DecodeString(m.Data)
				if err != nil {
					break
				}
				want = append(want, realtime.Binary(b))
			} else {
				want = append(want, realtime.Text(m.Data))
			}
		}
		// Receive until the client polls again (the answer is handled and
		// what it held is in the inbox, which Receive empties first) or
		// the connection ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.again:
				cancel()
			case <-ctx.Done():
			}
		}()
		for {
			m, err := c.Receive(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the client neither polled again nor ended")
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			if err != nil {
				var ce *realtime.CloseError
				if errors.As(err, &ce) && (ce.Code < 1000 || ce.Code > 4999 || len(ce.Reason) > 123 || !utf8.ValidString(ce.Reason)) {
					t.Fatalf("close %d %q", ce.Code, ce.Reason)
				}
				if errors.Is(err, rtclient.ErrGap) {
					continue
				}
				return
			}
			if !valid {
				t.Fatalf("delivered %q from an answer that is not JSON", m.Data)
			}
			i := 0
			for i < len(want) && !(want[i].Type == m.Type && bytes.Equal(want[i].Data, m.Data)) {
				i++
			}
			if i == len(want) {
				t.Fatalf("delivered %v %q, not in the answer (or out of order)", m.Type, m.Data)
			}
			want = want[i+1:]
		}
	})
}
