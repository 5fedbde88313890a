package harness

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestSourceIP(t *testing.T) {
	if got := SourceIP(0, 1000).String(); got != "127.0.0.2" {
		t.Errorf("first: %s", got)
	}
	if got := SourceIP(2500, 1000).String(); got != "127.0.0.4" {
		t.Errorf("2500th: %s", got)
	}
	if CheckSources(250_000, 1000) != nil || CheckSources(250_001, 1000) == nil || CheckSources(1, 0) == nil {
		t.Error("CheckSources bounds")
	}
}

func TestDialAll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dial := func(ctx context.Context, _ int, src net.IP) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	conns, err := DialAll(context.Background(), 30, 10, 4, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(conns)
	for i, c := range conns {
		if got, want := c.LocalAddr().(*net.TCPAddr).IP.String(), SourceIP(i, 10).String(); got != want {
			t.Fatalf("connection %d from %s, want %s", i, got, want)
		}
	}

	boom := errors.New("boom")
	_, err = DialAll(context.Background(), 30, 10, 4, func(ctx context.Context, i int, src net.IP) (net.Conn, error) {
		if i == 7 {
			return nil, boom
		}
		return dial(ctx, i, src)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
}
