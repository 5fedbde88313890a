package transports_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/transports"
)

// A preset is a value: copy it, change what the route needs, and mount
// the copy. The preset itself is left as it was.
func Example() {
	o := transports.Messaging
	o.MaxConns = 10_000
	o.AllowedOrigins = []string{"https://chat.example.com"}

	mux := http.NewServeMux()
	mux.Handle("/chat", realtime.NewRoute(realtime.Funcs{}, &o))

	for _, t := range o.Transports {
		fmt.Println(t.Kind())
	}
	fmt.Println("preset MaxConns:", transports.Messaging.MaxConns)
	// Output:
	// websocket
	// sse
	// longpoll
	// preset MaxConns: 0
}

// A dashboard pushes figures to screens that barely talk back. The
// preset serves SSE first; here rtkit's Go client reads it over loopback.
func ExampleDashboard() {
	figures := realtime.Funcs{OnOpen: func(c *realtime.Conn) error {
		return c.SendJSON(map[string]float64{"cpu": 0.42})
	}}
	o := transports.Dashboard
	route := realtime.NewRoute(figures, &o)
	srv := httptest.NewServer(route)
	defer srv.Close()
	defer route.Shutdown(context.Background())

	ctx := context.Background()
	c, err := rtclient.Dial(ctx, srv.URL, &rtclient.Options{Transports: []realtime.Kind{realtime.SSE}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(realtime.CloseNormal, "")
	m, err := c.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Transport(), m.Text())
	// Output: sse {"cpu":0.42}
}
