package rtgin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtgin"
	rtws "github.com/rtkit/rtkit/transports/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

// auth is a typical gin middleware: a token in the query or a 401.
func auth(c *gin.Context) {
	user, ok := map[string]string{"t-alice": "alice"}[c.Query("token")]
	if !ok {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
		return
	}
	c.Set("user", user)
	c.Header("X-Served-By", "rtkit")
}

func setup(t *testing.T) (srv *httptest.Server, opened *atomic.Int32, status chan int) {
	t.Helper()
	opened = new(atomic.Int32)
	route := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			opened.Add(1)
			user, _ := c.Value(rtgin.Key("user")).(string)
			return c.SendText("hello " + user)
		},
	}, &realtime.Options{Transports: []realtime.Transport{rtws.New(rtws.Options{})}})
	status = make(chan int, 4)
	r := gin.New()
	r.Use(func(c *gin.Context) { c.Next(); status <- c.Writer.Status() })
	r.GET("/chat", auth, rtgin.Handler(route))
	srv = httptest.NewServer(r)
	t.Cleanup(func() {
		route.Shutdown(t.Context())
		srv.Close()
	})
	return srv, opened, status
}

func wsURL(srv *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

func TestMiddlewareValuesReachHandler(t *testing.T) {
	srv, _, status := setup(t)
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, "/chat?token=t-alice"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := resp.Header.Get("X-Served-By"); got != "rtkit" {
		t.Errorf("header set by middleware = %q, want it on the 101 response", got)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(p) != "hello alice" {
		t.Errorf("got %q, want the user set by middleware", p)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	ws.ReadMessage() // the close reply
	if got := <-status; got != http.StatusSwitchingProtocols {
		t.Errorf("gin recorded status %d, want 101", got)
	}
}

func TestMiddlewareRejectsBeforeUpgrade(t *testing.T) {
	srv, opened, status := setup(t)
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, "/chat?token=wrong"), nil)
	if err == nil {
		t.Fatal("dial succeeded without a valid token")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("response = %v, want 401", resp)
	}
	if <-status != http.StatusUnauthorized {
		t.Error("gin did not record 401")
	}
	if n := opened.Load(); n != 0 {
		t.Errorf("handler opened %d times after a 401", n)
	}
}
