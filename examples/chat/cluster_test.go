package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime"
)

// startChat runs the program with the given broker URL until the test
// ends and returns its node.
func startChat(t *testing.T, brokerURL string) *chatNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", brokerURL, func(u string) { urls <- u }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case u := <-urls:
		return &chatNode{url: u[:len(u)-1]}
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return nil
}

// Two processes' worth of chat on one broker: ada on node 1 over
// WebSocket, bob on node 2 over SSE, one room.
func twoChatNodes(t *testing.T, brokerURL string) {
	t.Setenv("CHAT_SECRET", "shared by every node")
	n1, n2 := startChat(t, brokerURL), startChat(t, brokerURL)
	ada := n1.dial(t, n1.login(t, "ada"), realtime.WebSocket)
	bob := n2.dial(t, n2.login(t, "bob"), realtime.SSE)
	room := fmt.Sprint("r", time.Now().UnixNano()) // brokers outlive a test run
	send(t, ada, command{Join: room})
	adaRoster, bobRoster := roster{}, roster{}
	untilRoster(t, ada, adaRoster, "ada")
	send(t, bob, command{Join: room})
	untilRoster(t, bob, bobRoster, "ada", "bob")
	untilRoster(t, ada, adaRoster, "ada", "bob")
	send(t, bob, command{Room: room, Text: "across nodes"})
	if p := postOf(t, next(t, ada)); p.From != "bob" || p.Text != "across nodes" {
		t.Fatalf("got %+v", p)
	}

	// No sticky sessions: a long-poll session opened on node 1, its
	// message POSTed to node 2, which forwards it through the broker.
	token := n2.login(t, "bob")
	open, _ := http.NewRequest(http.MethodPost, n1.url+"/chat?transport=longpoll", nil)
	open.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(open)
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	msg, _ := json.Marshal(command{Room: room, Text: "forwarded"})
	post, _ := http.NewRequest(http.MethodPost, n2.url+"/chat", bytes.NewReader(msg))
	post.Header.Set("Authorization", "Bearer "+token)
	post.Header.Set(realtime.HeaderToken, sess.Token)
	resp, err = http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST through the other node: %s", resp.Status)
	}
	if p := postOf(t, next(t, ada)); p.From != "bob" || p.Text != "forwarded" {
		t.Fatalf("got %+v", p)
	}
}

func TestChatOnNATS(t *testing.T) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	// Cleanups run last in, first out: the chat nodes stop before the server.
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	twoChatNodes(t, s.ClientURL())
}

func TestChatOnRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH: apt-get install redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) // after the chat nodes stop
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	opt, _ := redis.ParseURL(url)
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling for readiness, with a deadline
	}
	twoChatNodes(t, url)
}
