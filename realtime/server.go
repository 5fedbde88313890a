package realtime

import (
	"context"
	"sync"
)

// Server groups routes so that they shut down together. The zero value is
// ready to use.
type Server struct {
	mu     sync.Mutex
	routes []*Route
}

// Route returns a new route that serves h with options o, owned by s.
func (s *Server) Route(h Handler, o *Options) *Route {
	rt := NewRoute(h, o)
	s.mu.Lock()
	s.routes = append(s.routes, rt)
	s.mu.Unlock()
	return rt
}

// Shutdown shuts down every route of s at once, as Route.Shutdown does, and
// waits for all of them or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	routes := append([]*Route(nil), s.routes...)
	s.mu.Unlock()
	idles := make([]<-chan struct{}, len(routes))
	for i, rt := range routes {
		idles[i] = rt.startShutdown()
	}
	for i, rt := range routes {
		if err := rt.wait(ctx, idles[i]); err != nil {
			return err
		}
	}
	return nil
}
