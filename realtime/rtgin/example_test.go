package rtgin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtgin"
	"github.com/rtkit/rtkit/transports"
)

// A route on gin behind an auth middleware: the middleware runs before
// the handler (and would answer 401 without calling it), and what it sets
// reaches the handler under rtgin.Key. Here over request/response, so the
// example needs no socket.
func ExampleHandler() {
	gin.SetMode(gin.ReleaseMode)
	o := transports.RequestResponse
	route := realtime.NewRoute(realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error {
			user, _ := c.Value(rtgin.Key("user")).(string)
			return c.SendText(user + " asked: " + m.Text())
		},
	}, &o)
	r := gin.New()
	auth := func(c *gin.Context) {
		if c.GetHeader("Authorization") != "Bearer t-ada" {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		c.Set("user", "ada")
	}
	r.POST("/ask", auth, rtgin.Handler(route))

	for _, token := range []string{"t-ada", "nope"} {
		req := httptest.NewRequest(http.MethodPost, "/ask", strings.NewReader("2+2?"))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 200 ada asked: 2+2?
	// 401
}
