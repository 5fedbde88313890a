// Package rtgin mounts rtkit routes on gin.
//
// gin middleware runs before the upgrade, as in the seed: a middleware that
// aborts (AbortWithStatus(401), say) stops the request before the route
// sees it, so the handler is never called. Values middleware stored with
// c.Set reach the handler through Conn.Value under a Key, because Handler
// copies them into the request's context; gin's *Context itself is pooled
// and reused, so nothing keeps it.
//
//	r := gin.New()
//	r.GET("/chat", auth, rtgin.Handler(route))
//	// in the handler: userID, _ := c.Value(rtgin.Key("user")).(string)
//
// Routes that also take POSTs (SSE and long-polling post-backs) mount with
// r.Any or both r.GET and r.POST.
package rtgin

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
)

// Key is the context key under which Handler stores a value that gin
// middleware set with c.Set(name, v): read it with
// conn.Value(rtgin.Key(name)). A type of its own, so that it collides with
// no other package's keys.
type Key string

// Handler returns a gin handler that serves h, usually a *realtime.Route,
// with the values set on the gin context copied into the request's
// context, each under Key(name) (a key that is not a string, and so
// already of some package's own type, is kept as it is).
func Handler(h http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if keys := c.Keys; len(keys) > 0 {
			ctx := r.Context()
			for k, v := range keys {
				if name, ok := k.(string); ok {
					k = Key(name) // a string is no context key of its own
				}
				ctx = context.WithValue(ctx, k, v)
			}
			r = r.WithContext(ctx)
		}
		if websocket.IsWebSocketUpgrade(r) {
			// gin records this status only; the upgrader writes the 101.
			// Without it gin's logger would report 200 for upgrades.
			c.Writer.WriteHeader(http.StatusSwitchingProtocols)
		}
		h.ServeHTTP(c.Writer, r)
	}
}
