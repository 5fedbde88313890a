package deployment_test

import (
	"os"
	"testing"

	"github.com/rtkit/rtkit/testing/browsertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Shutdown()
	os.Exit(code)
}
