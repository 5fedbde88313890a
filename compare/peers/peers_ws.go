package main

import (
	"context"

	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	"github.com/olahol/melody"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// server is one library serving one workload in the server process.
type server struct {
	handler http.Handler
	// conns counts the live connections; for fan-out, the subscribed ones.
	conns func() int
	// publish sends msg to every subscriber (fan-out), nil where the
	// server has no fan-out.
	publish func(msg []byte)
	// push sends msg n times down every open event stream (SSE).
	push func(n int, msg []byte)
}

// counter counts live connections.
type counter struct{ n atomic.Int64 }

func (c *counter) add(d int64) { c.n.Add(d) }
func (c *counter) get() int    { return int(c.n.Load()) }

// quietLogger logs warnings and errors to stderr, nothing else.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fanoutTopic is the one topic or channel fan-out subscribers are on.
const fanoutTopic = "t"

// --- raw gorilla/websocket: the baseline ---

// gorillaUpgrader is the baseline's upgrader, configured as the project's
// other baselines are (compare, compare/idlemem, BenchmarkEcho): 1 KiB
// read buffer, 4 KiB write buffers from a shared pool.
func gorillaUpgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
}

// newGorilla is raw gorilla/websocket: for echo, idle and connect one
// handler goroutine per connection doing ReadMessage then WriteMessage;
// for fan-out the hub of gorilla's examples/chat.
func newGorilla(workload string) (*server, error) {
	up := gorillaUpgrader()
	if workload == wlFanout {
		return newGorillaHub(up), nil
	}
	var live counter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		live.add(1)
		defer live.add(-1)
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(mt, p); err != nil {
				return
			}
		}
	})
	return &server{handler: h, conns: live.get}, nil
}

// The timing constants of gorilla's examples/chat/client.go.
const (
	hubWriteWait      = 10 * time.Second
	hubPongWait       = 60 * time.Second
	hubPingPeriod     = (hubPongWait * 9) / 10
	hubMaxMessageSize = 512
)

// hub is gorilla's examples/chat/hub.go: one goroutine owns the client
// set; register, unregister and broadcast reach it over channels.
type hub struct {
	clients    map[*hubClient]bool
	broadcast  chan []byte
	register   chan *hubClient
	unregister chan *hubClient
	live       counter
}

// hubClient is examples/chat/client.go's Client: a 256-message send
// channel drained by writePump.
type hubClient struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
			h.live.add(1)
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
				h.live.add(-1)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default:
					close(c.send)
					delete(h.clients, c)
					h.live.add(-1)
				}
			}
		}
	}
}

func (c *hubClient) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(hubMaxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(hubPongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(hubPongWait)); return nil })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
	}
}

// writePump is the example's, except that it writes each queued message
// as a frame of its own: the example appends queued chat lines to the
// current frame, newline-separated, which changes message boundaries; no
// other server here does that.
func (c *hubClient) writePump() {
	ticker := time.NewTicker(hubPingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(hubWriteWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(msg)
			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(hubWriteWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func newGorillaHub(up *websocket.Upgrader) *server {
	h := &hub{clients: map[*hubClient]bool{}, broadcast: make(chan []byte), register: make(chan *hubClient), unregister: make(chan *hubClient)}
	go h.run()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &hubClient{hub: h, conn: conn, send: make(chan []byte, 256)}
		h.register <- c
		go c.writePump()
		go c.readPump()
	})
	return &server{handler: handler, conns: h.live.get, publish: func(msg []byte) { h.broadcast <- msg }}
}

// --- rtkit ---

// newRtkit is an rtkit route on the WebSocket transport with its default
// options, except that the connection caps are off (the load comes from a
// few addresses): an echo handler, and for fan-out a topics.Topics that
// OnOpen subscribes every connection to.
func newRtkit(workload string) (*server, error) {
	ts := topics.New(nil)
	var subscribed counter
	h := realtime.Funcs{
		OnMessage: func(c *realtime.Conn, m realtime.Message) error { return c.Send(m) },
	}
	if workload == wlFanout {
		h.OnOpen = func(c *realtime.Conn) error {
			if err := ts.Subscribe(c, fanoutTopic); err != nil {
				return err
			}
			subscribed.add(1)
			return nil
		}
		h.OnClose = func(*realtime.Conn, error) { subscribed.add(-1) }
	}
	rt := realtime.NewRoute(h, &realtime.Options{
		MaxConns: -1, MaxConnsPerClient: -1,
		Transports: []realtime.Transport{rtws.New(rtws.Options{})},
		Logger:     quietLogger(),
	})
	s := &server{handler: rt, conns: rt.Len}
	if workload == wlFanout {
		s.conns = subscribed.get
		s.publish = func(msg []byte) {
			if _, err := ts.Publish(context.Background(), fanoutTopic, realtime.Text(string(msg))); err != nil {
				slog.Error("peers: rtkit publish", "err", err)
			}
		}
	}
	return s, nil
}

// --- olahol/melody ---

// newMelody is melody with its defaults (a gorilla upgrader with 1 KiB
// buffers, a 256-message buffer per session), except MaxMessageSize,
// raised from 512 bytes so that the 1 KiB echo fits. Echo is
// HandleMessage writing the message back; fan-out is Melody.Broadcast.
func newMelody(string) (*server, error) {
	m := melody.New()
	m.Config.MaxMessageSize = 64 << 10
	m.HandleMessage(func(s *melody.Session, msg []byte) { s.Write(msg) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.HandleRequest(w, r) })
	return &server{handler: h, conns: m.Len, publish: func(msg []byte) { m.Broadcast(msg) }}, nil
}

// --- centrifugal/centrifuge ---

// newCentrifuge is a centrifuge Node with its default Config and
// WebsocketConfig, anonymous credentials set by a middleware as its README
// does, echo as an RPC whose reply carries the request's data, and
// fan-out as client-side subscriptions to one channel and Node.Publish.
// Clients speak its JSON protocol.
func newCentrifuge(string) (*server, error) {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return nil, err
	}
	var live counter
	node.OnConnect(func(c *centrifuge.Client) {
		live.add(1)
		c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			cb(centrifuge.RPCReply{Data: e.Data}, nil)
		})
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
		c.OnDisconnect(func(centrifuge.DisconnectEvent) { live.add(-1) })
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: ""})
		ws.ServeHTTP(w, r.WithContext(ctx))
	})
	return &server{handler: h, conns: live.get, publish: func(msg []byte) {
		if _, err := node.Publish(fanoutTopic, msg); err != nil {
			slog.Error("peers: centrifuge publish", "err", err)
		}
	}}, nil
}

// --- coder/websocket ---

// newCoder is coder/websocket with nil AcceptOptions: for echo, idle and
// connect a handler doing Read then Write with the request's context; for
// fan-out the subscriber set of its examples/chat, with a 256-message
// buffer per subscriber (the example's 16 cannot hold a burst of 50; 256
// is gorilla's and melody's) and no publish rate limiter.
func newCoder(workload string) (*server, error) {
	if workload == wlFanout {
		return newCoderChat(), nil
	}
	var live counter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		live.add(1)
		defer live.add(-1)
		ctx := r.Context()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	return &server{handler: h, conns: live.get}, nil
}

// coderSubscriber is examples/chat's subscriber.
type coderSubscriber struct {
	msgs      chan []byte
	closeSlow func()
}

func newCoderChat() *server {
	var (
		mu   sync.Mutex
		subs = map[*coderSubscriber]struct{}{}
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context())
		s := &coderSubscriber{msgs: make(chan []byte, 256), closeSlow: func() {
			c.Close(coder.StatusPolicyViolation, "connection too slow to keep up with messages")
		}}
		mu.Lock()
		subs[s] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(subs, s)
			mu.Unlock()
		}()
		for {
			select {
			case msg := <-s.msgs:
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.Write(wctx, coder.MessageText, msg)
				cancel()
				if err != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(subs)
	}
	publish := func(msg []byte) {
		mu.Lock()
		defer mu.Unlock()
		for s := range subs {
			select {
			case s.msgs <- msg:
			default:
				go s.closeSlow()
			}
		}
	}
	return &server{handler: h, conns: count, publish: publish}
}

// --- lxzan/gws ---

// gwsHandler is the event handler of the gws server: echo in OnMessage,
// and the connection set that fan-out broadcasts to.
type gwsHandler struct {
	gws.BuiltinEventHandler
	mu    sync.Mutex
	conns map[*gws.Conn]struct{}
}

func (h *gwsHandler) OnOpen(c *gws.Conn) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
}

func (h *gwsHandler) OnClose(c *gws.Conn, err error) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *gwsHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.WriteMessage(m.Opcode, m.Bytes())
}

func (h *gwsHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// newGws is gws with a nil ServerOption (its defaults), served from
// net/http as its README's "Best Practice" does (Upgrade, then ReadLoop on
// a goroutine of its own); fan-out is its Broadcaster, one per message,
// over the set of open connections.
func newGws(string) (*server, error) {
	eh := &gwsHandler{conns: map[*gws.Conn]struct{}{}}
	up := gws.NewUpgrader(eh, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	})
	publish := func(msg []byte) {
		b := gws.NewBroadcaster(gws.OpcodeText, msg)
		defer b.Close()
		eh.mu.Lock()
		defer eh.mu.Unlock()
		for c := range eh.conns {
			b.Broadcast(c)
		}
	}
	return &server{handler: h, conns: eh.count, publish: publish}, nil
}
