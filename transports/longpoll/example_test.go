package longpoll_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// One POST runs the handler's Open, Message and Close; what it sent is the
// response: the message itself, or a JSON array when the client accepts
// JSON.
func ExampleNewRequestResponse() {
	shout := realtime.Funcs{OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		return c.SendText(strings.ToUpper(m.Text()))
	}}
	route := realtime.NewRoute(shout, &realtime.Options{
		Transports: []realtime.Transport{longpoll.NewRequestResponse()},
	})
	srv := httptest.NewServer(route)
	defer srv.Close()

	for _, accept := range []string{"", "application/json"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("hello"))
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		fmt.Println()
	}
	// Output:
	// 200 text/plain; charset=utf-8 HELLO
	// 200 application/json; charset=utf-8 [{"type":"text","data":"HELLO"}]
}

// The long-polling protocol by hand, with nothing but net/http: open a
// session, poll for what the handler sent, post a message, close. The
// token is the session's secret: it travels in a header, never in the URL,
// and is never printed or logged.
func ExampleNew() {
	echo := realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { return c.SendText("welcome") },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return c.SendText("echo: " + m.Text())
		},
	}
	route := realtime.NewRoute(echo, &realtime.Options{
		Transports: []realtime.Transport{longpoll.New(longpoll.Options{})},
	})
	srv := httptest.NewServer(route)
	defer srv.Close()
	defer route.Shutdown(context.Background())

	// do sends req and returns the status and body.
	do := func(req *http.Request) (int, []byte) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// Open: POST ?transport=longpoll answers the connection's public id
	// and the session's token.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"?transport=longpoll", nil)
	status, b := do(req)
	var session struct{ ID, Token, Transport string }
	json.Unmarshal(b, &session)
	fmt.Println("open:", status, session.Transport)

	// Poll: GET ?transport=longpoll with the token and, in Realtime-Ack,
	// the highest seq received so far. It is held until there are
	// messages after it (or the connection closes, or the hold ends).
	poll := func(ack uint64) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"?transport=longpoll", nil)
		req.Header.Set(realtime.HeaderToken, session.Token)
		req.Header.Set(longpoll.HeaderAck, strconv.FormatUint(ack, 10))
		status, b := do(req)
		var p longpoll.Poll
		json.Unmarshal(b, &p)
		fmt.Print("poll after ", ack, ": ", status)
		for _, m := range p.Messages {
			fmt.Printf(" [%d %s %q]", m.Seq, m.Type, m.Data)
		}
		if p.Close != nil {
			fmt.Printf(" close %d %q", p.Close.Code, p.Close.Reason)
		}
		fmt.Println()
	}
	poll(0)

	// Send: POST with the token, the message as the body and Realtime-Seq
	// numbering it from 1, so that a retried POST is delivered once.
	req, _ = http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("hi"))
	req.Header.Set(realtime.HeaderToken, session.Token)
	req.Header.Set(realtime.HeaderSeq, "1")
	status, _ = do(req)
	fmt.Println("send:", status)
	poll(1)

	// Close: DELETE with the token and, optionally, a code and reason.
	req, _ = http.NewRequest(http.MethodDelete, srv.URL, strings.NewReader(`{"code":4000,"reason":"bye"}`))
	req.Header.Set(realtime.HeaderToken, session.Token)
	status, _ = do(req)
	fmt.Println("close:", status)
	poll(2)
	// Output:
	// open: 200 longpoll
	// poll after 0: 200 [1 text "welcome"]
	// send: 204
	// poll after 1: 200 [2 text "echo: hi"]
	// close: 204
	// poll after 2: 200 close 4000 "bye"
}
