package harness

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// MaxSources is how many loopback source addresses SourceIP hands out:
// 127.0.0.2 to 127.0.0.251.
const MaxSources = 250

// SourceIP is the source address of connection i when each address carries
// perIP connections: 127.0.0.2 for the first perIP, then 127.0.0.3, ...
// Spreading clients over addresses passes the ~28,000 ephemeral ports one
// address has towards one server port.
func SourceIP(i, perIP int) net.IP { return net.IPv4(127, 0, 0, byte(2+i/perIP)) }

// CheckSources reports an error when n connections at perIP per address
// need more than MaxSources addresses.
func CheckSources(n, perIP int) error {
	if perIP <= 0 || (n+perIP-1)/perIP > MaxSources {
		return fmt.Errorf("%d connections at %d per source address need more than %d addresses", n, perIP, MaxSources)
	}
	return nil
}

// DialAll opens n connections with open, workers at a time, connection i
// from SourceIP(i, perIP). On the first failure it cancels the rest, closes
// what it opened and returns the error.
func DialAll(ctx context.Context, n, perIP, workers int, open func(ctx context.Context, i int, src net.IP) (net.Conn, error)) ([]net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failOnce sync.Once
	var fail error
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				src := SourceIP(i, perIP)
				c, err := open(ctx, i, src)
				if err != nil {
					failOnce.Do(func() { fail = fmt.Errorf("connection %d from %s: %w", i, src, err) })
					cancel()
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if fail == nil && ctx.Err() != nil {
		fail = ctx.Err()
	}
	if fail != nil {
		CloseAll(conns)
		return nil, fail
	}
	return conns, nil
}

// CloseAll closes every non-nil connection.
func CloseAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// ResetOnClose makes closing c send a reset, so that thousands of client
// ports do not linger in TIME_WAIT between runs.
func ResetOnClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}
