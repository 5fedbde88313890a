// Command peers measures rtkit side by side, in one run, with the
// libraries its users would pick instead, each figure divided by raw
// gorilla/websocket's (for SSE, a bare net/http stream's) in the same
// round:
//
//	cd compare/peers && go run .                   # the full comparison: 8 minutes on 2 busy cores
//	cd compare/peers && go run . -quick            # tiny counts, for tests
//	cd compare/peers && go run . -workloads echo-64,fanout -servers rtkit,melody -rounds 3
//
// It is a module of its own (github.com/rtkit/rtkit/compare/peers, with
// rtkit replaced by this tree), so that rtkit's go.mod does not gain the
// peers as dependencies.
//
// The columns: raw gorilla/websocket (the baseline), rtkit, olahol/melody,
// centrifugal/centrifuge, coder/websocket and lxzan/gws over WebSocket;
// a bare net/http stream (the baseline), rtkit, r3labs/sse/v2 and
// tmaxmax/go-sse over SSE. Each serves with its idiomatic defaults; the
// report lists every setting that differs and why.
//
// The workloads (-workloads names them):
//
//   - echo-64, echo-1024: 50 connections, each with one message in
//     flight, for one second: echoes/s and p50 round trip;
//   - connect: connections opened one after another, timed from the dial
//     to the first echo: p50, and the server's CPU per connection;
//   - idle: server RSS per idle connection with 8,000 connections, on
//     every WebSocket and SSE server;
//   - fanout: 10,000 subscribers, a burst of 50 messages, then 20 more one
//     at a time: deliveries/s and the server's CPU per delivery (rtkit
//     through realtime/topics, the peers through their hub or broadcast
//     idiom: the hub of gorilla's examples/chat, Melody.Broadcast,
//     centrifuge channels, coder/websocket's examples/chat, gws's
//     Broadcaster);
//   - push: 50,000 messages down one event stream: messages/s, the
//     server's CPU and bytes per message.
//
// Every measurement re-executes this binary twice: a server process
// (-role server) serving one library on a loopback port, and a client
// process (-role client) that loads it, both driven by this process over
// their stdin and stdout, and both exiting when their stdin closes. The
// client is the same for every server (gorilla's client for WebSocket,
// a GET and rtkit's event-stream reader for SSE); for centrifuge it
// speaks centrifuge's JSON protocol inside the same frames. CPU comes from
// the server process's own getrusage over the measured phase; memory from
// its VmRSS after runtime.GC and debug.FreeOSMemory. Idle and fan-out
// clients connect from 127.0.0.2, 127.0.0.3, ... (-per-ip each), as
// compare/idlemem does.
//
// In each of -rounds rounds (-heavy-rounds for idle and fan-out, whose
// measurements take seconds each) every server is measured once, in
// turn, round k starting at the k-th server, so that drift on a shared
// machine falls on every server alike; each cell is the median of the per-round ratios
// to the baseline, with their range. A measurement that fails leaves its
// round out of the cell and is listed under Failures. The report goes to
// stdout and, as results.md and results.csv, to -out (default results,
// in this directory), headed by the command that made it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtkit/rtkit/compare/internal/harness"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its arguments and streams, so that a test binary can
// play every role.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := defaults()
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "internal: server or client of one measurement")
	server := fs.String("server", "", "internal: the server measured")
	wl := fs.String("workload", "", "internal: what the server and client do")
	addr := fs.String("addr", "", "internal: the server's address, for the client")
	size := fs.Int("size", 64, "internal: message bytes")
	n := fs.Int("n", 0, "internal: the client's connections or connects")
	duration := fs.Duration("duration", 0, "internal: the echo client's measured span")
	warm := fs.Duration("warm", 0, "internal: the echo client's warm-up")
	quick := fs.Bool("quick", false, "tiny counts, for tests (flags given explicitly still apply)")
	servers := fs.String("servers", "", "comma-separated servers to measure besides the baselines (default all)")
	wls := fs.String("workloads", "", "comma-separated workloads: "+strings.Join(workloadNames(), ", ")+" (default all)")
	out := fs.String("out", cfg.Out, "directory for results.md and results.csv (empty: do not write)")
	ints := []struct {
		name, usage string
		dst         *int
	}{
		{"rounds", "rounds of echo, connect and push; every server is measured once in each", &cfg.Rounds},
		{"heavy-rounds", "rounds of idle and fan-out", &cfg.HeavyRounds},
		{"echo-conns", "echo connections", &cfg.EchoConns},
		{"idle", "idle connections per measurement", &cfg.Idle},
		{"per-ip", "connections per client source address (127.0.0.2, 127.0.0.3, ...)", &cfg.PerIP},
		{"fanout", "fan-out subscribers", &cfg.Fanout},
		{"burst", "fan-out burst, messages", &cfg.Burst},
		{"paced", "fan-out messages sent one at a time", &cfg.Paced},
		{"connects", "timed connections per connect measurement", &cfg.Connects},
		{"push", "messages pushed down the SSE stream", &cfg.Push},
	}
	set := map[string]*int{}
	for _, f := range ints {
		set[f.name] = fs.Int(f.name, *f.dst, f.usage)
	}
	echoDur := fs.Duration("echo-duration", cfg.EchoDuration, "measured span of each echo measurement")
	timeout := fs.Duration("timeout", cfg.Timeout, "time cap of one measurement")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "peers: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := harness.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "peers: raising the open-file limit: %v\n", err)
	}
	var err error
	switch *role {
	case "server":
		err = serve(*server, *wl, *size, stdin, stdout)
	case "client":
		err = client(clientConfig{server: *server, workload: *wl, addr: *addr, size: *size, n: *n,
			duration: *duration, warm: *warm, perIP: *set["per-ip"]}, stdin, stdout)
	case "":
		if *quick {
			cfg.quick()
		}
		explicit := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
		for _, f := range ints {
			if explicit[f.name] || !*quick {
				*f.dst = *set[f.name]
			}
		}
		if explicit["echo-duration"] || !*quick {
			cfg.EchoDuration = *echoDur
		}
		if explicit["timeout"] || !*quick {
			cfg.Timeout = *timeout
		}
		cfg.Peers, cfg.Workloads = splitList(*servers), splitList(*wls)
		cfg.Out, cfg.Args, cfg.Progress = *out, args, stderr
		if cfg.Exe, err = os.Executable(); err != nil {
			break
		}
		var res *Results
		if res, err = Run(context.Background(), cfg); err != nil {
			break
		}
		res.WriteMarkdown(stdout)
		if cfg.Out != "" {
			if err = res.WriteFiles(cfg.Out); err == nil {
				fmt.Fprintf(stderr, "peers: wrote %s\n", filepath.Join(cfg.Out, "results.{md,csv}"))
			}
		}
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "peers: %v\n", err)
		return 1
	}
	return 0
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
