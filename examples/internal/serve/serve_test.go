package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ addr, bound, want string }{
		{"localhost:8080", "127.0.0.1:8080", "http://localhost:8080/"},
		{"127.0.0.1:0", "127.0.0.1:41234", "http://127.0.0.1:41234/"},
		{":8081", "[::]:8081", "http://localhost:8081/"},
	} {
		bound, _ := net.ResolveTCPAddr("tcp", tc.bound)
		if got := baseURL(tc.addr, bound); got != tc.want {
			t.Errorf("baseURL(%q, %q) = %q, want %q", tc.addr, tc.bound, got, tc.want)
		}
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	var srv realtime.Server
	go func() { done <- Run(ctx, "127.0.0.1:0", &srv, Page([]byte("<p>hi")), func(u string) { urls <- u }) }()
	resp, err := http.Get(<-urls)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "<p>hi" || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("got %q (%s)", body, resp.Header.Get("Content-Type"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The examples' server follows the README's "Production" section: slow
// request headers are cut off, idle keep-alive connections end, and no
// WriteTimeout cuts streams. (transports/deployment checks on loopback
// that rtkit's transports outlive these timeouts.)
func TestHTTPServerTimeouts(t *testing.T) {
	hs := HTTPServer(http.NotFoundHandler())
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadHeaderTimeout", hs.ReadHeaderTimeout, 10 * time.Second},
		{"ReadTimeout", hs.ReadTimeout, 30 * time.Second},
		{"IdleTimeout", hs.IdleTimeout, 2 * time.Minute},
		{"WriteTimeout", hs.WriteTimeout, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if hs.Handler == nil {
		t.Error("no handler")
	}
}

// Run serves with those timeouts: a client that sends half a request and
// stops is cut off once ReadHeaderTimeout has passed, where a bare
// http.Server would hold it for ever.
func TestRunCutsSlowHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("waits ReadHeaderTimeout (10 s)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	var srv realtime.Server
	go func() { done <- Run(ctx, "127.0.0.1:0", &srv, Page([]byte("<p>hi")), func(u string) { urls <- u }) }()
	defer func() { cancel(); <-done }()
	u := strings.TrimSuffix(strings.TrimPrefix(<-urls, "http://"), "/")
	conn, err := net.Dial("tcp", u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+u+"\r\nUpgrade: websocket\r\n") // and no more
	conn.SetReadDeadline(start.Add(ReadHeaderTimeout + 10*time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open %v later", time.Since(start))
	}
	if took := time.Since(start); took < ReadHeaderTimeout-time.Second {
		t.Fatalf("cut off after %v, before ReadHeaderTimeout", took)
	}
}
