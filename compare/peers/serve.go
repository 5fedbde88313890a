package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtkit/rtkit/compare/internal/harness"
)

// peer is one column of the tables: a library, how its clients speak to
// it, and what it serves.
type peer struct {
	name   string
	sse    bool // an event-stream server; otherwise WebSocket
	wire   string
	start  func(workload string) (*server, error)
	doc    string // its configuration, for the report
	module string // its Go module, for the report's versions
}

// Wire protocols the clients speak.
const (
	wirePlain      = "plain"      // a WebSocket message is a message
	wireCentrifuge = "centrifuge" // centrifuge's JSON protocol over WebSocket
)

// peers, in the order of the columns. The first of each kind is the
// baseline its rows are divided by.
var peers = []peer{
	{name: "gorilla", module: "github.com/gorilla/websocket", wire: wirePlain, start: newGorilla,
		doc: "raw gorilla/websocket: Upgrader with 1 KiB read and 4 KiB pooled write buffers (as compare's other baselines); one goroutine per connection doing ReadMessage then WriteMessage; fan-out through the hub of its examples/chat (one goroutine owns the client set, a 256-message send channel and a writePump per client), one frame per message"},
	{name: "rtkit", module: "github.com/rtkit/rtkit", wire: wirePlain, start: newRtkit,
		doc: "this tree: realtime.NewRoute with websocket.New(websocket.Options{}) and default options but MaxConns and MaxConnsPerClient -1 (the load comes from a few addresses); echo is OnMessage calling Send; fan-out is realtime/topics (OnOpen subscribes, Topics.Publish)"},
	{name: "melody", module: "github.com/olahol/melody", wire: wirePlain, start: newMelody,
		doc: "melody with its defaults but MaxMessageSize 64 KiB (512 B by default, below the 1 KiB echo); echo is HandleMessage calling Session.Write; fan-out is Melody.Broadcast"},
	{name: "centrifuge", module: "github.com/centrifugal/centrifuge", wire: wireCentrifuge, start: newCentrifuge,
		doc: "centrifuge with a zero Config and WebsocketConfig, anonymous credentials from a middleware (as its README); JSON protocol; echo is an RPC whose reply carries the request's data, after the connect command; fan-out is a client-side subscription to one channel and Node.Publish"},
	{name: "coder", module: "github.com/coder/websocket", wire: wirePlain, start: newCoder,
		doc: "coder/websocket with nil AcceptOptions; a handler doing Read then Write with the request's context; fan-out is the subscriber set of its examples/chat with a 256-message buffer (16 in the example, too few for a burst of 50) and no publish rate limiter"},
	{name: "gws", module: "github.com/lxzan/gws", wire: wirePlain, start: newGws,
		doc: "gws with a nil ServerOption, served from net/http as its README's Best Practice (Upgrade, then ReadLoop on a goroutine); echo in OnMessage; fan-out is one Broadcaster per message over the open connections"},
	{name: "nethttp-sse", module: "net/http", sse: true, start: newNetHTTP,
		doc: "the bare stream: a net/http handler that writes the headers, then \"data: ...\\n\\n\" and Flush for each message"},
	{name: "rtkit-sse", module: "github.com/rtkit/rtkit", sse: true, start: newRtkitSSE,
		doc: "this tree: realtime.NewRoute with sse.New(sse.Options{}), default options but no connection caps and Overflow OverflowBlock (a producer waits for room as the other servers' do); push is Conn.Send"},
	{name: "r3labs-sse", module: "github.com/r3labs/sse/v2", sse: true, start: newR3labs,
		doc: "r3labs/sse/v2 with its defaults but AutoReplay off (no event log, as the others keep none); one stream; one Publish per message"},
	{name: "go-sse", module: "github.com/tmaxmax/go-sse", sse: true, start: newGoSSE,
		doc: "tmaxmax/go-sse, a zero Server (its default provider, Joe); one Publish per message"},
}

// peerNamed returns the peer called name.
func peerNamed(name string) (peer, bool) {
	for _, p := range peers {
		if p.name == name {
			return p, true
		}
	}
	return peer{}, false
}

// ServerStats is the server process's answer to "stats" and "measure".
type ServerStats struct {
	Conns int `json:"conns"`
	// CPU is user+system time since the last "mark".
	CPU time.Duration `json:"cpu"`
	// BytesOut and BytesIn are what the server's connections wrote and
	// read since the last "mark", at the TCP level.
	BytesOut int64 `json:"bytesOut"`
	BytesIn  int64 `json:"bytesIn"`
	harness.Memory
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serve runs the server role: it serves peer name for workload on a
// loopback port, prints "listening ADDR" and answers stdin, one line at a
// time:
//
//	mark       start counting CPU and bytes afresh; answers "marked"
//	stats      answers "stats {ServerStats}"
//	measure    collects garbage first; answers "stats {ServerStats}" with memory
//	publish K  fan-out: K messages to every subscriber; answers "published"
//	push N     SSE: N messages down every stream; answers "pushed"
//	probe      SSE: one probe message down every stream; answers "probed"
//
// It returns when stdin ends, without waiting for its connections.
func serve(name, workload string, size int, stdin io.Reader, stdout io.Writer) error {
	p, ok := peerNamed(name)
	if !ok {
		return fmt.Errorf("unknown server %q", name)
	}
	if os.Getenv("PEERS_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for exact bytes per connection
	}
	s, err := p.start(workload)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	// Only the push workload counts bytes: elsewhere every server gets
	// the plain *net.TCPConn.
	cl := &countingListener{Listener: ln, on: workload == wlPush}
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(cl)

	var mu sync.Mutex // one line at a time on stdout
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	say("listening %s", ln.Addr())
	msg := payload(size)
	var cpu0 time.Duration
	var in0, out0 int64
	stats := func(mem bool) {
		st := ServerStats{Conns: s.conns(), CPU: cpuTime() - cpu0, BytesOut: cl.out.Load() - out0, BytesIn: cl.in.Load() - in0}
		if mem {
			st.Memory = harness.MeasureSelf()
		}
		b, _ := json.Marshal(st)
		say("stats %s", b)
	}
	var work sync.WaitGroup
	var prof profile
	defer prof.stop()
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.Atoi(arg)
		switch {
		case cmd == "mark":
			work.Wait()
			prof.start(name, workload)
			cpu0, in0, out0 = cpuTime(), cl.in.Load(), cl.out.Load()
			say("marked")
		case cmd == "stats":
			prof.stop()
			stats(false)
		case cmd == "measure":
			prof.stop()
			stats(true)
			heapProfile(name, workload)
		case cmd == "publish" && s.publish != nil && n > 0:
			// The client sees the deliveries; the parent waits on it, not
			// on this answer, and may ask for stats meanwhile.
			work.Go(func() {
				for range n {
					s.publish(msg)
				}
				say("published")
			})
		case cmd == "push" && s.push != nil && n > 0:
			work.Go(func() {
				s.push(n, msg)
				say("pushed")
			})
		case cmd == "probe" && s.push != nil:
			s.push(1, []byte(probeData))
			say("probed")
		default:
			say("error unknown or unsupported request %q", sc.Text())
		}
	}
	return nil
}

// probeData is the data of the message that tells an SSE client its
// stream is subscribed.
const probeData = `"probe"`

// payload is the message every workload sends: size bytes that are a JSON
// string, as centrifuge's JSON protocol needs its data to be JSON.
func payload(size int) []byte {
	size = max(size, 2)
	return []byte(`"` + strings.Repeat("x", size-2) + `"`)
}

// countingListener counts the bytes its connections read and write at the
// TCP level: HTTP headers, chunk framing, WebSocket frame headers and all.
type countingListener struct {
	net.Listener
	on      bool
	in, out atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || !l.on {
		return c, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.out.Add(int64(n))
	return n, err
}

// profile writes the server's CPU profile of each measured span (from
// "mark" to "stats") to $PEERS_CPUPROFILE.SERVER.WORKLOAD.PID when that
// variable is set: a way to see where a server's CPU goes, for example
//
//	PEERS_CPUPROFILE=/tmp/cpu go run . -servers rtkit -workloads connect
//	go tool pprof -top /tmp/cpu.rtkit.connect.*
type profile struct{ f *os.File }

func (p *profile) start(server, workload string) {
	p.stop()
	f := profileFile("PEERS_CPUPROFILE", server, workload)
	if f == nil {
		return
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return
	}
	p.f = f
}

// profileFile creates $ENV.SERVER.WORKLOAD.PID for a profile, or returns
// nil when env is not set (or the file cannot be made).
func profileFile(env, server, workload string) *os.File {
	base := os.Getenv(env)
	if base == "" {
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%s.%d", base, server, workload, os.Getpid()))
	if err != nil {
		return nil
	}
	return f
}

// heapProfile writes the server's heap profile, after the idle
// workload's measure, to $PEERS_HEAPPROFILE.SERVER.WORKLOAD.PID when that
// variable is set: what a server keeps per connection, for example
//
//	PEERS_HEAPPROFILE=/tmp/heap go run . -servers rtkit -workloads idle
//	go tool pprof -sample_index inuse_space -top /tmp/heap.rtkit.idle.*
func heapProfile(server, workload string) {
	f := profileFile("PEERS_HEAPPROFILE", server, workload)
	if f == nil {
		return
	}
	defer f.Close()
	pprof.Lookup("heap").WriteTo(f, 0)
}

func (p *profile) stop() {
	if p.f == nil {
		return
	}
	pprof.StopCPUProfile()
	p.f.Close()
	p.f = nil
}
