package redisbroker

import (
	"errors"
	"net"
	"time"
)

// probeInterval is how often the broker tries to reach a Redis address
// that refused its subscriptions' connections. A subscription reconnects
// within about this long of Redis's return, however long the outage was:
// what is published between Redis's return and the subscription's
// resync reaches the subscription only through the history, which must
// not have rolled over by then (at this interval a topic must carry about
// Options.History messages in 10ms for that to happen).
const probeInterval = 10 * time.Millisecond

// dialFailure returns the network and address whose dial err reports, if
// it reports one.
func dialFailure(err error) (network, addr string, ok bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || oe.Addr == nil {
		return "", "", false
	}
	return oe.Net, oe.Addr.String(), true
}

// reachable returns a channel that is closed once addr accepts a
// connection again. One probe per address, on a goroutine of the
// broker's, serves every subscription that waits for it, so a node that
// follows many topics does not dial a dead Redis once per topic. The
// channel of a closed broker never closes: Close stops the listeners that
// wait on it.
func (b *Broker) reachable(network, addr string) <-chan struct{} {
	key := network + " " + addr
	b.mu.Lock()
	defer b.mu.Unlock()
	if up := b.probes[key]; up != nil {
		return up
	}
	up := make(chan struct{})
	if b.closed {
		return up
	}
	b.probes[key] = up
	b.wg.Add(1)
	go b.probe(network, addr, key, up)
	return up
}

// probe dials addr every probeInterval until a connection succeeds, then
// closes up, or until the broker closes. The first dial waits an interval
// too, so a subscription that fails on a Redis the probe can reach (a
// flapping one) retries at most once per interval.
func (b *Broker) probe(network, addr, key string, up chan struct{}) {
	defer b.wg.Done()
	d := net.Dialer{Timeout: b.ping}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.done:
			return
		}
		if conn, err := d.DialContext(b.ctx, network, addr); err == nil {
			conn.Close()
			break
		}
	}
	b.mu.Lock()
	delete(b.probes, key)
	b.mu.Unlock()
	close(up)
}
