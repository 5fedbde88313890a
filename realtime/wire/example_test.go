package wire_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/wire"
)

// echoOnce is a toy transport: a POST ?transport=echo-once is one whole
// connection. Its body is the one message the handler receives, and the
// response lists what the handler sent, a line each, and the close code.
type echoOnce struct{}

var _ realtime.Transport = echoOnce{}

func (echoOnce) Kind() realtime.Kind { return "echo-once" }

// Bind makes the transport's server for one route.
func (t echoOnce) Bind(rt *realtime.Route) (realtime.TransportHandler, error) {
	return &echoOnceServer{ep: wire.NewEndpoint(rt, t.Kind())}, nil
}

type echoOnceServer struct{ ep *wire.Endpoint }

var _ realtime.TransportHandler = (*echoOnceServer)(nil)

func (s *echoOnceServer) Match(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Get("transport") == "echo-once"
}

func (s *echoOnceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, err := s.ep.ReadMessage(w, r)
	if err != nil {
		realtime.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	link, err := s.ep.Accept(r) // counts against MaxConns
	if err != nil {
		realtime.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	var out collector
	link.Open(&out)  // the handler's Open, on this goroutine
	link.Receive(m)  // its Message; what it sends is written to out
	link.Closed(nil) // its Close; once it returns the core is done with out
	for _, m := range out.msgs {
		fmt.Fprintln(w, m.Text())
	}
	fmt.Fprintln(w, "close", out.code)
}

// collector is the wire.Conn of one echo-once connection: it keeps what
// the handler sends. The core may call Close while Write runs.
type collector struct {
	mu     sync.Mutex
	msgs   []realtime.Message
	code   int
	closed bool
}

func (c *collector) Write(msgs []realtime.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return realtime.ErrClosed
	}
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *collector) Close(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed { // the first call wins
		c.closed, c.code = true, code
	}
	return nil
}

// A transport is a value with a Kind and a Bind; its server admits each
// connection through the route's Endpoint and drives it through a Link.
func Example() {
	h := realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error { return c.SendText("welcome") },
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			return c.SendText(string(c.Transport()) + ": " + m.Text())
		},
	}
	route := realtime.NewRoute(h, &realtime.Options{Transports: []realtime.Transport{echoOnce{}}})
	srv := httptest.NewServer(route)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"?transport=echo-once", "text/plain", strings.NewReader("hi"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, "\n", string(body))
	// Output:
	// 200
	// welcome
	// echo-once: hi
	// close 1000
}
