package realtimetest_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rtkit/rtkit/testing/realtimetest"
)

// Drop closes hijacked connections too, which httptest's
// CloseClientConnections leaves open.
func TestListenerDropsHijackedConnections(t *testing.T) {
	hijacked := make(chan net.Conn, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")
		brw.Flush()
		hijacked <- c
	}))
	ln := &realtimetest.Listener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	defer ts.Close()

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(c)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	<-hijacked
	ts.CloseClientConnections() // does not reach it
	ln.Drop()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the hijacked connection is still open after Drop")
	}
}
