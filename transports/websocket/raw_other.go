//go:build !unix

package websocket

import (
	"bufio"
	"net"
)

// rawWriter is not available here: tryUncork leaves every write to the
// writer goroutine.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) writeNow([]byte) (int, error) { return 0, nil }

// idleReader is not available here: a connection keeps its read buffer.
type idleReader struct{}

func newIdleReader(net.Conn, *poller) *idleReader { return nil }

func (*idleReader) wait(*bufio.Reader, func()) bool { return false }
func (*idleReader) lend(*bufio.Reader, bool)        {}
func (*idleReader) shutdown()                       {}
