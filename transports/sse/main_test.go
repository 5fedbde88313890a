package sse_test

import (
	"io"
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// r3labs/sse/v2 leaks its client's read loop after Unsubscribe or a
	// cancelled context (its PR #178 is unmerged); that goroutine is not
	// ours.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/r3labs/sse/v2.(*Client).readLoop"))
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
