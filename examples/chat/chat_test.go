package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
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

// nextPost returns c's next chat message, skipping presence envelopes
// (a diff may come before or after a message, as the interval falls).
func nextPost(t *testing.T, c *rtclient.Conn) post {
	t.Helper()
	for {
		if env := next(t, c); env.Presence == "" {
			return postOf(t, env)
		}
	}
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

// nextPresence returns the next presence envelope, skipping nothing else:
// a message in between fails the test.
func nextPresence(t *testing.T, c *rtclient.Conn, kind string) topics.Envelope {
	t.Helper()
	env := next(t, c)
	if env.Presence != kind {
		t.Fatalf("want a presence %s, got %+v", kind, env)
	}
	return env
}

// names lists the members' names.
func names(ms []topics.Member) []string {
	var out []string
	for _, m := range ms {
		var info struct{ Name string }
		json.Unmarshal(m.Info, &info)
		out = append(out, info.Name)
	}
	slices.Sort(out)
	return out
}

// roster follows a room's presence as the page does: a state replaces
// the list, a diff applies to it.
type roster map[string]string // id → name

func (r roster) apply(env topics.Envelope) {
	if env.Presence == "state" {
		clear(r)
		for _, m := range env.Members {
			r[m.ID] = names([]topics.Member{m})[0]
		}
	}
	for _, m := range env.Leaves {
		delete(r, m.ID)
	}
	for _, m := range env.Joins {
		r[m.ID] = names([]topics.Member{m})[0]
	}
}

func (r roster) names() []string {
	var out []string
	for _, n := range r {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// untilRoster reads c's envelopes, applying presence to r, until r lists
// want; it returns the other envelopes it read.
func untilRoster(t *testing.T, c *rtclient.Conn, r roster, want ...string) []topics.Envelope {
	t.Helper()
	var others []topics.Envelope
	for !slices.Equal(r.names(), want) {
		env := next(t, c)
		if env.Presence == "" {
			others = append(others, env)
		}
		r.apply(env)
	}
	return others
}

func TestChatRoomsHistoryAndPresence(t *testing.T) {
	n := startNode(t, topics.NewMemoryBroker(nil), newAuth(""))
	ada := n.dial(t, n.login(t, "ada"), realtime.WebSocket)
	send(t, ada, command{Join: "general"})
	adaRoster := roster{}
	untilRoster(t, ada, adaRoster, "ada") // the state, then her join unless the state had it
	send(t, ada, command{Room: "general", Text: "first!"})
	if p := nextPost(t, ada); p.From != "ada" || p.Text != "first!" {
		t.Fatalf("got %+v", p)
	}

	// Bob, over SSE, joins later: the history replays (the post; the
	// diffs before it are summed up by the state), then he is live.
	bob := n.dial(t, n.login(t, "bob"), realtime.SSE)
	send(t, bob, command{Join: "general"})
	if p := nextPost(t, bob); p.Text != "first!" {
		t.Fatalf("history: %+v", p)
	}
	bobRoster := roster{}
	bobRoster.apply(nextPresence(t, bob, "state"))
	untilRoster(t, bob, bobRoster, "ada", "bob")
	untilRoster(t, ada, adaRoster, "ada", "bob")

	// The name is the token's, whatever the client says.
	send(t, bob, map[string]string{"room": "general", "text": "hello", "from": "ada"})
	for _, c := range []*rtclient.Conn{ada, bob} {
		if p := nextPost(t, c); p.From != "bob" || p.Text != "hello" {
			t.Fatalf("got %+v", p)
		}
	}

	// Bad input gets an answer, and the connection stays.
	send(t, bob, command{Join: "Not A Room!"})
	m, _ := bob.Receive(ctxT(t))
	if !strings.Contains(m.Text(), "bad room name") {
		t.Fatalf("got %s", m.Data)
	}

	// Bob leaves: ada sees it in a diff that names him.
	bob.Close(realtime.CloseNormal, "")
	for {
		env := nextPresence(t, ada, "diff")
		if len(env.Leaves) > 0 {
			if !slices.Equal(names(env.Leaves), []string{"bob"}) || len(env.Joins) != 0 {
				t.Fatalf("ada sees bob leave: %+v", env)
			}
			break
		}
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
	adaRoster := roster{}
	untilRoster(t, ada, adaRoster, "ada")

	token := nodeB.login(t, "bob")
	bob := nodeB.dial(t, token, realtime.SSE)
	send(t, bob, command{Join: "general"})
	untilRoster(t, ada, adaRoster, "ada", "bob") // bob's join, seen on A
	send(t, bob, command{Room: "general", Text: "from B"})
	if p := nextPost(t, ada); p.From != "bob" || p.Text != "from B" {
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
	if p := nextPost(t, ada); p.Text != "polled" || p.From != "bob" {
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
