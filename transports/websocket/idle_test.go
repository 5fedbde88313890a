package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// idlePair returns a connection's read buffer and its idleReader on the
// server end of a loopback connection, or skips where sockets are not
// read raw.
func idlePair(t *testing.T) (*bufio.Reader, *idleReader, net.Conn, net.Conn) {
	server, client := tcpPair(t)
	br, ir := newReader(server, nil, nil)
	if ir == nil {
		t.Skip("no raw socket reads on this platform")
	}
	return br, ir, server, client
}

// readFull reads n bytes through br as gorilla does: waiting first
// whenever the buffer is empty.
func readFull(ir *idleReader, br *bufio.Reader, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for len(out) < n {
		if br.Buffered() == 0 {
			ir.wait(br, nil)
		}
		p := make([]byte, min(n-len(out), 700))
		k, err := br.Read(p)
		out = append(out, p[:k]...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestIdleReaderLendsAndTakesBackItsBuffer(t *testing.T) {
	br, ir, _, client := idlePair(t)
	if br.Size() < 256 {
		t.Fatalf("gorilla adopts only a reader over 256 bytes; got %d", br.Size())
	}
	// Writes of several sizes, some larger than the pooled buffer, each
	// read after the reader waited with no buffer.
	for _, n := range []int{1, 64, readBufferSize - 1, readBufferSize, 3*readBufferSize + 7} {
		want := bytes.Repeat([]byte{byte(n)}, n)
		errc := make(chan error, 1)
		go func() { _, err := client.Write(want); errc <- err }()
		got, err := readFull(ir, br, n)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("%d bytes: %d left over", n, br.Buffered())
		}
		ir.unlend(br)
		if br.Size() != 0 {
			t.Fatalf("an empty reader kept a buffer of %d bytes", br.Size())
		}
		if ir.lent != nil {
			t.Fatal("the pooled reader was not given back")
		}
	}
}

func TestIdleReaderSeesTheEnd(t *testing.T) {
	br, ir, _, client := idlePair(t)
	client.Write([]byte("last"))
	client.Close()
	got, err := readFull(ir, br, 4)
	if err != nil || string(got) != "last" {
		t.Fatalf("got %q, %v", got, err)
	}
	ir.wait(br, nil) // returns: the stream ended
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v, want EOF", err)
	}
}

func TestIdleReaderWokenByClose(t *testing.T) {
	br, ir, server, _ := idlePair(t)
	done := make(chan error, 1)
	go func() {
		ir.wait(br, nil) // blocks: nothing to read, until the socket closes
		_, err := br.ReadByte()
		done <- err
	}()
	server.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
}
