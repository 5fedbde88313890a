package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// The client side of every WebSocket server is gorilla/websocket's
// client; only what goes inside the messages differs, by the server's
// wire protocol: a plain message, or centrifuge's JSON protocol
// (commands and replies with ids, several replies to a frame, one per
// line, and "{}" pings that the client answers with "{}").

// dialWS opens a WebSocket connection to addr from source address src
// (nil: any) with read and write buffers of the given sizes.
func dialWS(ctx context.Context, addr string, src net.IP, rbuf, wbuf int) (*websocket.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	wd := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second, ReadBufferSize: rbuf, WriteBufferSize: wbuf}
	ws, resp, err := wd.DialContext(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return ws, nil
}

// wsClient is one client connection and its wire protocol. It is used by
// one goroutine at a time.
type wsClient struct {
	ws     *websocket.Conn
	wire   string
	nextID int
}

// setDeadline bounds the connection's reads and writes by ctx.
func (c *wsClient) setDeadline(ctx context.Context) {
	dl, _ := ctx.Deadline()
	c.ws.SetReadDeadline(dl)
	c.ws.SetWriteDeadline(dl)
}

// open does what the protocol needs after the handshake before the
// connection is usable: for centrifuge the connect command and, if
// subscribe, a subscription to the fan-out channel.
func (c *wsClient) open(ctx context.Context, subscribe bool) error {
	if c.wire != wireCentrifuge {
		return nil
	}
	c.setDeadline(ctx)
	if _, err := c.call(`"connect":{}`); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if subscribe {
		if _, err := c.call(`"subscribe":{"channel":"` + fanoutTopic + `"}`); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	return nil
}

// call sends a centrifuge command, body being its fields after the id,
// and returns its reply.
func (c *wsClient) call(body string) ([]byte, error) {
	c.nextID++
	id := c.nextID
	if err := c.ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"id":%d,%s}`, id, body)); err != nil {
		return nil, err
	}
	for {
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		for line := range bytes.SplitSeq(frame, []byte("\n")) {
			if c.pong(line) {
				continue
			}
			if replyID(line) != id {
				continue
			}
			if bytes.Contains(line, []byte(`"error":`)) {
				return nil, fmt.Errorf("error reply %.200s", line)
			}
			return line, nil
		}
	}
}

// pong answers a centrifuge ping line and reports whether line was one.
func (c *wsClient) pong(line []byte) bool {
	if string(line) != "{}" {
		return false
	}
	c.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
	return true
}

// replyID returns the id of a centrifuge reply line, 0 if none.
func replyID(line []byte) int {
	rest, ok := bytes.CutPrefix(line, []byte(`{"id":`))
	if !ok {
		return 0
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0
	}
	id, _ := strconv.Atoi(string(rest[:end]))
	return id
}

// echo sends msg and waits for it to come back.
func (c *wsClient) echo(msg []byte) error {
	if c.wire == wireCentrifuge {
		reply, err := c.call(`"rpc":{"data":` + string(msg) + `}`)
		if err != nil {
			return err
		}
		if !bytes.Contains(reply, msg) {
			return fmt.Errorf("rpc reply %.100q lacks the data sent", reply)
		}
		return nil
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return err
	}
	_, p, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	if !bytes.Equal(p, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d", len(msg), len(p))
	}
	return nil
}

// deliveries reads the next frame and returns how many fan-out messages
// it carries.
func (c *wsClient) deliveries() (int, error) {
	_, frame, err := c.ws.ReadMessage()
	if err != nil {
		return 0, err
	}
	if c.wire != wireCentrifuge {
		return 1, nil
	}
	n := 0
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		switch {
		case c.pong(line):
		case bytes.Contains(line, []byte(`"pub":`)):
			n++
		}
	}
	return n, nil
}

// close sends a close frame and waits, at most a second, for the server
// to answer or hang up.
func (c *wsClient) close() {
	dl := time.Now().Add(time.Second)
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), dl)
	c.ws.SetReadDeadline(dl)
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			break
		}
	}
	c.ws.Close()
}
