package websocket_test

import (
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// connection's reader, writer, pinger or handler goroutine that outlives
// its test is a leak.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}
