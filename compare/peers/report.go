package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is one line of a table: one figure of one workload, divided by a
// baseline's in the same round.
type row struct {
	table    string // "ws" or "sse"
	title    string
	workload string
	metric   string
	unit     string
	base     string // the server the ratio divides by
}

// rows returns the tables' rows, titled with cfg's counts.
func rows(cfg *Config) []row {
	n := func(v int) string { return fmtCount(float64(v)) }
	return []row{
		{"ws", fmt.Sprintf("echo, %d busy conns, 64 B: echoes/s", cfg.EchoConns), "echo-64", "rate", "/s", "gorilla"},
		{"ws", "echo, 64 B: p50 round trip", "echo-64", "p50", "µs", "gorilla"},
		{"ws", "echo, 64 B: server CPU per echo", "echo-64", "cpu", "µs", "gorilla"},
		{"ws", fmt.Sprintf("echo, %d busy conns, 1 KiB: echoes/s", cfg.EchoConns), "echo-1024", "rate", "/s", "gorilla"},
		{"ws", "echo, 1 KiB: p50 round trip", "echo-1024", "p50", "µs", "gorilla"},
		{"ws", "echo, 1 KiB: server CPU per echo", "echo-1024", "cpu", "µs", "gorilla"},
		{"ws", fmt.Sprintf("idle RSS per WebSocket, %s conns", n(cfg.Idle)), "idle", "rss", "KiB", "gorilla"},
		{"ws", fmt.Sprintf("fan-out to %s, burst of %d: deliveries/s", n(cfg.Fanout), cfg.Burst), "fanout", "burst-rate", "/s", "gorilla"},
		{"ws", "fan-out, burst: server CPU per delivery", "fanout", "burst-cpu", "ns", "gorilla"},
		{"ws", fmt.Sprintf("fan-out to %s, one message at a time: deliveries/s", n(cfg.Fanout)), "fanout", "paced-rate", "/s", "gorilla"},
		{"ws", "fan-out, one at a time: server CPU per delivery", "fanout", "paced-cpu", "ns", "gorilla"},
		{"ws", "connect, dial to first echo: p50", "connect", "p50", "µs", "gorilla"},
		{"ws", "connect: server CPU per connection", "connect", "cpu", "µs", "gorilla"},
		{"sse", "SSE push, one stream: messages/s", "push", "rate", "/s", "nethttp-sse"},
		{"sse", "SSE push: server CPU per message", "push", "cpu", "ns", "nethttp-sse"},
		{"sse", "SSE bytes per 64 B message (x bare stream)", "push", "bytes", "B", "nethttp-sse"},
		{"sse", fmt.Sprintf("SSE idle RSS per conn, %s conns (x bare stream)", n(cfg.Idle)), "idle", "rss", "KiB", "nethttp-sse"},
		{"sse", "SSE idle RSS per conn (x gorilla's WebSocket)", "idle", "rss", "KiB", "gorilla"},
	}
}

// cell is one server's figures on one row.
type cell struct {
	values   []float64 // per successful round
	ratios   []float64 // per round where both it and the baseline succeeded
	rounds   int
	failures int
}

func (r *Results) cell(rw row, server string) cell {
	runs := r.Runs[rw.workload][server]
	base := r.Runs[rw.workload][rw.base]
	c := cell{rounds: len(runs)}
	for i, m := range runs {
		v, ok := m[rw.metric]
		if m == nil || !ok {
			c.failures++
			continue
		}
		c.values = append(c.values, v)
		if i < len(base) && base[i] != nil && base[i][rw.metric] > 0 {
			c.ratios = append(c.ratios, v/base[i][rw.metric])
		}
	}
	return c
}

// median returns the median of xs, NaN if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratioText is "0.92 (0.83–1.03)", with the failed rounds if any.
func (c cell) ratioText() string {
	var s string
	switch {
	case c.rounds == 0:
		return ""
	case len(c.ratios) == 0:
		s = "—"
	default:
		s = fmt.Sprintf("%.2f (%.2f–%.2f)", median(c.ratios), slices.Min(c.ratios), slices.Max(c.ratios))
	}
	if c.failures > 0 {
		s += fmt.Sprintf(" [%d of %d rounds failed]", c.failures, c.rounds)
	}
	return s
}

func (c cell) valueText(unit string) string {
	if len(c.values) == 0 {
		if c.rounds > 0 {
			return "failed"
		}
		return ""
	}
	v := median(c.values)
	switch unit {
	case "/s":
		return fmtCount(v) + "/s"
	case "KiB":
		return fmt.Sprintf("%.1f KiB", v)
	case "B":
		return fmt.Sprintf("%.1f B", v)
	default:
		return fmt.Sprintf("%s %s", fmtNum(v), unit)
	}
}

// fmtCount writes 1234567 as 1.23M, 12345 as 12.3k, 8000 as 8,000.
func fmtCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e5:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e4 && math.Mod(v, 1000) != 0:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1000:
		i := int64(v)
		return strconv.FormatInt(i/1000, 10) + "," + fmt.Sprintf("%03d", i%1000)
	}
	return fmtNum(v)
}

func fmtNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// columns returns the measured servers of a table.
func (r *Results) columns(table string) []string {
	var cols []string
	for _, name := range r.Peers {
		p, _ := peerNamed(name)
		if p.sse == (table == "sse") {
			cols = append(cols, name)
		}
	}
	return cols
}

// measured reports whether the row's workload ran.
func (r *Results) measured(rw row) bool { _, ok := r.Runs[rw.workload]; return ok }

// Command is how to reproduce the run, from the repository's root.
func (r *Results) Command() string {
	cmd := "(cd compare/peers && go run .)"
	if len(r.Config.Args) > 0 {
		cmd = "(cd compare/peers && go run . " + strings.Join(r.Config.Args, " ") + ")"
	}
	return cmd
}

// WriteMarkdown writes the report.
func (r *Results) WriteMarkdown(w io.Writer) {
	cfg := &r.Config
	fmt.Fprintf(w, "# rtkit against the peers\n\n")
	fmt.Fprintf(w, "`%s`, %s, %s, %d CPUs (GOMAXPROCS %d), load average %s, %v.\n\n",
		r.Command(), r.Start.UTC().Format("2006-01-02 15:04 MST"), r.GoVersion, r.NumCPU, r.GOMAXPROCS, r.LoadAvg, r.Elapsed.Round(time.Second))
	if r.Revision != "" {
		fmt.Fprintf(w, "rtkit: this tree at %s.\n\n", r.Revision)
	}
	fmt.Fprintf(w, "Each cell is the median over %d rounds (idle and fan-out: %d) of the server's figure divided by the baseline's in the same round "+
		"(raw gorilla/websocket for WebSocket, a bare net/http stream for SSE), with the lowest and highest ratio. "+
		"Each measurement runs a fresh server process and a fresh client process (gorilla's client for every WebSocket server); "+
		"in round k the servers start at the k-th (A B C, B C A, ...). Rates: higher is better; times, CPU, bytes and memory: lower is better.\n\n", cfg.Rounds, cfg.HeavyRounds)
	for _, t := range []struct{ table, title string }{{"ws", "WebSocket (x raw gorilla)"}, {"sse", "SSE (x a bare net/http stream, or as the row says)"}} {
		cols := r.columns(t.table)
		var rs []row
		for _, rw := range rows(cfg) {
			if rw.table == t.table && r.measured(rw) {
				rs = append(rs, rw)
			}
		}
		if len(rs) == 0 || len(cols) == 0 {
			continue
		}
		fmt.Fprintf(w, "## %s\n\n", t.title)
		fmt.Fprintf(w, "| row | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("--:|", len(cols)))
		for _, rw := range rs {
			fmt.Fprintf(w, "| %s |", rw.title)
			for _, c := range cols {
				fmt.Fprintf(w, " %s |", r.cell(rw, c).ratioText())
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\nMedian figures:\n\n| row | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("--:|", len(cols)))
		for _, rw := range rs {
			if rw.base != cols[0] {
				continue // the same figures as another row
			}
			fmt.Fprintf(w, "| %s |", rw.title)
			for _, c := range cols {
				fmt.Fprintf(w, " %s |", r.cell(rw, c).valueText(rw.unit))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	var fails []string
	for _, wl := range workloads {
		for _, name := range r.Peers {
			for _, e := range r.Errors[wl.name][name] {
				fails = append(fails, fmt.Sprintf("- %s, %s, %s", wl.name, name, e))
			}
		}
	}
	if len(fails) > 0 {
		fmt.Fprintf(w, "## Failures\n\n%s\n\n", strings.Join(fails, "\n"))
	}
	fmt.Fprintf(w, "## Settings\n\n")
	fmt.Fprintf(w, "- echo: %d connections, each with one message in flight, %v measured after %v of warm-up;\n", cfg.EchoConns, cfg.EchoDuration, cfg.EchoWarm)
	fmt.Fprintf(w, "- idle: %d connections from 127.0.0.2, 127.0.0.3, ... (%d each), quiet for 2s once all are open, then server RSS after GC and FreeOSMemory, less the RSS before;\n", cfg.Idle, cfg.PerIP)
	fmt.Fprintf(w, "- fan-out: %d subscribers, a burst of %d 64 B messages, then %d published one at a time, each once the previous one reached every subscriber; server CPU from its rusage over each phase;\n", cfg.Fanout, cfg.Burst, cfg.Paced)
	fmt.Fprintf(w, "- connect: %d connections one after another (after %d untimed), each a new TCP connection, timed from the dial to the first 64 B echo, closed with a close frame; server CPU over all of them;\n", cfg.Connects, max(cfg.Connects/10, 1))
	fmt.Fprintf(w, "- push: %d messages of 64 B down one stream as fast as it reads them; bytes are what the server wrote at the TCP level.\n\n", cfg.Push)
	fmt.Fprintf(w, "Every message is a 64 B or 1 KiB JSON string (centrifuge's JSON protocol wants JSON data). Servers, each with its idiomatic defaults:\n\n")
	versions := moduleVersions()
	for _, name := range r.Peers {
		p, _ := peerNamed(name)
		fmt.Fprintf(w, "- **%s** (%s %s): %s.\n", name, p.module, versions[p.module], p.doc)
	}
}

// moduleVersions returns the version of each module in the binary.
func moduleVersions() map[string]string {
	v := map[string]string{"net/http": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			v[m.Path] = m.Version
			if m.Replace != nil {
				v[m.Path] = "at " + m.Replace.Path
			}
		}
	}
	v["github.com/rtkit/rtkit"] = "this tree"
	return v
}

// WriteCSV writes one line per row and server.
func (r *Results) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"table", "row", "server", "baseline", "unit", "median", "ratio_median", "ratio_min", "ratio_max", "rounds", "failed", "per_round"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, rw := range rows(&r.Config) {
		if !r.measured(rw) {
			continue
		}
		for _, name := range r.columns(rw.table) {
			c := r.cell(rw, name)
			if c.rounds == 0 {
				continue
			}
			var per []string
			for _, v := range c.values {
				per = append(per, f(v))
			}
			med, rmed, rmin, rmax := "", "", "", ""
			if len(c.values) > 0 {
				med = f(median(c.values))
			}
			if len(c.ratios) > 0 {
				rmed, rmin, rmax = f(median(c.ratios)), f(slices.Min(c.ratios)), f(slices.Max(c.ratios))
			}
			cw.Write([]string{rw.table, rw.title, name, rw.base, rw.unit, med, rmed, rmin, rmax,
				strconv.Itoa(c.rounds), strconv.Itoa(c.failures), strings.Join(per, ";")})
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteFiles writes results.md and results.csv to dir.
func (r *Results) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "results.md"))
	if err != nil {
		return err
	}
	r.WriteMarkdown(md)
	if err := md.Close(); err != nil {
		return err
	}
	c, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	if err := r.WriteCSV(c); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}
