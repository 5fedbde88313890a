package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

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
