package natsbroker_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
)

// The embedded server and the clients stop their goroutines on
// Shutdown+WaitForShutdown and Close; VerifyTestMain retries while the
// last of them exit.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

// natsServer is an embedded nats-server with JetStream, restartable on the
// same port and store directory.
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	s    *server.Server
}

func startServer(t testing.TB) *natsServer {
	ns := &natsServer{t: t, dir: t.TempDir(), port: -1}
	ns.start()
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      ns.port,
		JetStream: true,
		StoreDir:  ns.dir,
		NoLog:     true,
		NoSigs:    true,
		// Keep memory use of the per-test servers small.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  256 << 20,
	})
	if err != nil {
		ns.t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		ns.t.Fatal("nats-server did not start")
	}
	ns.s = s
	ns.port = s.Addr().(*net.TCPAddr).Port
}

func (ns *natsServer) stop() {
	if ns.s != nil {
		ns.s.Shutdown()
		ns.s.WaitForShutdown()
		ns.s = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// client is a connection that reconnects quickly and buffers nothing
// while disconnected; reconnected receives a value on each reconnect.
type client struct {
	nc          *nats.Conn
	reconnected chan struct{}
}

func connect(t testing.TB, ns *natsServer) *client {
	t.Helper()
	c := &client{reconnected: make(chan struct{}, 16)}
	nc, err := nats.Connect(ns.url(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.ReconnectBufSize(-1),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case c.reconnected <- struct{}{}:
			default:
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	t.Cleanup(nc.Close)
	return c
}

// newBroker returns a broker on a new connection to ns.
func newBroker(t testing.TB, ns *natsServer, o *natsbroker.Options) (*natsbroker.Broker, *client) {
	t.Helper()
	c := connect(t, ns)
	b, err := natsbroker.New(c.nc, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, c
}
