package longpoll_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

func TestSmokeLongPoll(t *testing.T) {
	closed := make(chan error, 1)
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen:    func(c *realtime.Conn) error { return c.SendText("welcome") },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.SendText("echo " + m.Text()) },
		OnClose:   func(c *realtime.Conn, err error) { closed <- err },
	}, &realtime.Options{Transports: []realtime.Transport{longpoll.New(longpoll.Options{}), longpoll.NewRequestResponse()}})
	srv := httptest.NewServer(rt)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/?transport=longpoll", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	var op struct{ ID, Token string }
	json.NewDecoder(resp.Body).Decode(&op)
	resp.Body.Close()
	if op.Token == "" {
		t.Fatal("no token")
	}
	poll := func(ack string) longpoll.Poll {
		req, _ := http.NewRequest("GET", srv.URL+"/?transport=longpoll", nil)
		req.Header.Set(realtime.HeaderToken, op.Token)
		req.Header.Set(longpoll.HeaderAck, ack)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p longpoll.Poll
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(resp.Status, err)
		}
		return p
	}
	p := poll("0")
	if len(p.Messages) != 1 || p.Messages[0].Data != "welcome" {
		t.Fatalf("poll 1: %+v", p)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader("hi"))
	req.Header.Set(realtime.HeaderToken, op.Token)
	req.Header.Set(realtime.HeaderSeq, "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("post: %v %s", err, b)
	}
	p = poll("1")
	if len(p.Messages) != 1 || p.Messages[0].Data != "echo hi" || p.Messages[0].Seq != 2 {
		t.Fatalf("poll 2: %+v", p)
	}
	req, _ = http.NewRequest("DELETE", srv.URL+"/", strings.NewReader(`{"code":4000,"reason":"bye"}`))
	req.Header.Set(realtime.HeaderToken, op.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete: %v %v", err, resp.Status)
	}
	if err := <-closed; realtime.CloseStatus(err) != 4000 {
		t.Fatalf("close: %v", err)
	}
	// request/response
	resp, err = http.Post(srv.URL+"/", "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `[{"type":"text","data":"welcome"},{"type":"text","data":"echo once"}]`+"\n" {
		t.Fatalf("rr: %s %s", resp.Status, b)
	}
	<-closed
	// negotiation
	resp, _ = http.Get(srv.URL + "/")
	b, _ = io.ReadAll(resp.Body)
	t.Logf("%s", b)
}
