package realtime_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/websocket"
)

// failing is a transport that cannot serve a route.
type failing struct{}

func (failing) Kind() realtime.Kind { return "failing" }
func (failing) Bind(*realtime.Route) (realtime.TransportHandler, error) {
	return nil, errors.New("needs HTTP/3")
}

// A route that could serve nothing fails loudly where it is made, as
// http.ServeMux.Handle does for a bad pattern, never with a log line and a
// route that answers nothing.
func TestNewRouteRefusesUnusableTransports(t *testing.T) {
	cases := []struct {
		name string
		o    *realtime.Options
		want string
	}{
		{"nil options", nil, "Options.Transports is empty"},
		{"no transports", &realtime.Options{}, "Options.Transports is empty"},
		{"nil transport", &realtime.Options{Transports: []realtime.Transport{nil}}, "nil transport"},
		{"listed twice", &realtime.Options{Transports: []realtime.Transport{websocket.New(websocket.Options{}), websocket.New(websocket.Options{Compression: true})}}, `"websocket" listed twice`},
		{"cannot bind", &realtime.Options{Transports: []realtime.Transport{failing{}}}, "needs HTTP/3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if s, _ := v.(string); !strings.Contains(s, tc.want) {
					t.Fatalf("panic %v, want one saying %q", v, tc.want)
				}
			}()
			realtime.NewRoute(realtime.Funcs{}, tc.o)
		})
	}
}
