package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/realtime/topics"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// chatNode is one chat server on loopback.
type chatNode struct {
	url string
	srv *realtime.Server
}

func startNode(t *testing.T, broker topics.Broker, a *auth) *chatNode {
	t.Helper()
	n := &chatNode{srv: &realtime.Server{}}
	hs := httptest.NewServer(newMux(n.srv, broker, a))
	n.url = hs.URL
	t.Cleanup(func() {
		n.srv.Shutdown(ctxT(t))
		hs.Close()
	})
	return n
}

func (n *chatNode) login(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Post(n.url+"/login", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login: %s %v", resp.Status, err)
	}
	return out.Token
}

func (n *chatNode) dial(t *testing.T, token string, k realtime.Kind) *rtclient.Conn {
	t.Helper()
	c, err := rtclient.Dial(ctxT(t), n.url+"/chat", &rtclient.Options{Token: token, Transports: []realtime.Kind{k}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(realtime.CloseNormal, "") })
	return c
}

func send(t *testing.T, c *rtclient.Conn, v any) {
	t.Helper()
	if err := c.SendJSON(ctxT(t), v); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, c *rtclient.Conn) topics.Envelope {
	t.Helper()
	m, err := c.Receive(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var env topics.Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatalf("%s: %v", m.Data, err)
	}
	return env
}

func postOf(t *testing.T, env topics.Envelope) post {
	t.Helper()
	if env.Data == nil {
		t.Fatalf("not a message: %+v", env)
	}
	var p post
	json.Unmarshal([]byte(*env.Data), &p)
	return p
}

func TestUnauthorized(t *testing.T) {
	n := startNode(t, topics.NewMemoryBroker(nil), newAuth(""))
	for _, token := range []string{"", "bob.forged"} {
		req, _ := http.NewRequest(http.MethodGet, n.url+"/chat", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %s", token, resp.Status)
		}
	}
	_, err := rtclient.Dial(ctxT(t), n.url+"/chat", &rtclient.Options{Transports: []realtime.Kind{realtime.WebSocket}})
	if err == nil {
		t.Fatal("a WebSocket without a token was upgraded")
	}
}

func TestChatRoomsHistoryAndPresence(t *testing.T) {
	n := startNode(t, topics.NewMemoryBroker(nil), newAuth(""))
	ada := n.dial(t, n.login(t, "ada"), realtime.WebSocket)
	send(t, ada, command{Join: "general"})
	if env := next(t, ada); env.Presence != "join" || string(env.Member.Info) != `{"name":"ada"}` {
		t.Fatalf("ada's own join: %+v", env)
	}
	send(t, ada, command{Room: "general", Text: "first!"})
	if p := postOf(t, next(t, ada)); p.From != "ada" || p.Text != "first!" {
		t.Fatalf("got %+v", p)
	}

	// Bob, over SSE, joins later: the history replays, then he is live.
	bob := n.dial(t, n.login(t, "bob"), realtime.SSE)
	send(t, bob, command{Join: "general"})
	if env := next(t, bob); env.Presence != "join" || env.Seq != 1 {
		t.Fatalf("history 1: %+v", env)
	}
	if p := postOf(t, next(t, bob)); p.Text != "first!" {
		t.Fatalf("history 2: %+v", p)
	}
	if env := next(t, bob); env.Presence != "join" || string(env.Member.Info) != `{"name":"bob"}` {
		t.Fatalf("bob's join: %+v", env)
	}
	if env := next(t, ada); env.Presence != "join" || string(env.Member.Info) != `{"name":"bob"}` {
		t.Fatalf("ada sees bob join: %+v", env)
	}

	// The name is the token's, whatever the client says.
	send(t, bob, map[string]string{"room": "general", "text": "hello", "from": "ada"})
	for _, c := range []*rtclient.Conn{ada, bob} {
		if p := postOf(t, next(t, c)); p.From != "bob" || p.Text != "hello" {
			t.Fatalf("got %+v", p)
		}
	}

	// Bad input gets an answer, and the connection stays.
	send(t, bob, command{Join: "Not A Room!"})
	m, _ := bob.Receive(ctxT(t))
	if !strings.Contains(m.Text(), "bad room name") {
		t.Fatalf("got %s", m.Data)
	}

	// Bob leaves: ada sees it.
	bob.Close(realtime.CloseNormal, "")
	if env := next(t, ada); env.Presence != "leave" || string(env.Member.Info) != `{"name":"bob"}` {
		t.Fatalf("ada sees bob leave: %+v", env)
	}
}

// Two nodes share a broker: a message said on node B reaches a member on
// node A, and a long-poll session opened on A is served through B.
func TestTwoNodes(t *testing.T) {
	broker := topics.NewMemoryBroker(nil)
	a := newAuth("shared secret")
	nodeA, nodeB := startNode(t, broker, a), startNode(t, broker, a)
	ada := nodeA.dial(t, nodeA.login(t, "ada"), realtime.WebSocket)
	send(t, ada, command{Join: "general"})
	next(t, ada) // her join

	token := nodeB.login(t, "bob")
	bob := nodeB.dial(t, token, realtime.SSE)
	send(t, bob, command{Join: "general"})
	next(t, ada) // bob's join, seen on A
	send(t, bob, command{Room: "general", Text: "from B"})
	if p := postOf(t, next(t, ada)); p.From != "bob" || p.Text != "from B" {
		t.Fatalf("got %+v", p)
	}

	// A long-poll session opened on A, its message POSTed to B.
	open, _ := http.NewRequest(http.MethodPost, nodeA.url+"/chat?transport=longpoll", nil)
	open.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(open)
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	msg, _ := json.Marshal(command{Room: "general", Text: "polled"})
	post, _ := http.NewRequest(http.MethodPost, nodeB.url+"/chat", bytes.NewReader(msg))
	post.Header.Set("Authorization", "Bearer "+token)
	post.Header.Set(realtime.HeaderToken, sess.Token)
	resp, err = http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST through B: %s", resp.Status)
	}
	if p := postOf(t, next(t, ada)); p.Text != "polled" || p.From != "bob" {
		t.Fatalf("got %+v", p)
	}
	// Another user's token cannot use bob's session, on either node.
	post, _ = http.NewRequest(http.MethodPost, nodeB.url+"/chat", bytes.NewReader(msg))
	post.Header.Set("Authorization", "Bearer "+nodeA.login(t, "mallory"))
	post.Header.Set(realtime.HeaderToken, sess.Token)
	resp, _ = http.DefaultClient.Do(post)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("mallory with bob's session: %s", resp.Status)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", "memory", func(u string) { urls <- u }) }()
	base := <-urls
	for _, path := range []string{"", "rtkit/rtkit.js"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), "127.0.0.1:0", "carrier-pigeon://x", func(string) {}); err == nil {
		t.Fatal("an unknown broker was accepted")
	}
}
