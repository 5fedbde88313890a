package main

import (
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run's measurements and what is derived from them.
type Report struct {
	Config     Config
	Start      time.Time
	Elapsed    time.Duration
	GoVersion  string
	GOMAXPROCS int
	NumCPU     int
	LoadAvg    string // at the start, from /proc/loadavg

	Rows     []*Row
	UseCases []UseCase
	Ratios   []Ratio
}

// UseCase is one line of the seed's use-case table.
type UseCase struct {
	Name      string
	Transport string // the pick
	Fallback  string // the pick among transports that pass both proxies, when the pick does not
	Figure    string // the deciding figures
	Rule      string
}

// Ratio compares an rtkit row with a baseline of the same run.
type Ratio struct {
	Name  string // "rtkit websocket / raw gorilla"
	Items []RatioItem
}

// RatioItem is rtkit's figure divided by the baseline's.
type RatioItem struct {
	Metric string
	Value  float64 // 0: not measured
}

// passes reports whether r got through both proxies.
func (r *Row) passes() bool { return r.NoUpgradeProxy == "yes" && r.BufferingProxy == "yes" }

// choose picks the best of rows by value (lower is better unless higher),
// and, if that one fails a proxy, the best of those that pass both.
func choose(rows []*Row, value func(*Row) float64, higher bool) (best, fallback *Row) {
	better := func(a, b *Row) bool {
		if b == nil {
			return true
		}
		if higher {
			return value(a) > value(b)
		}
		return value(a) < value(b)
	}
	for _, r := range rows {
		if value(r) <= 0 {
			continue
		}
		if better(r, best) {
			best = r
		}
		if r.passes() && better(r, fallback) {
			fallback = r
		}
	}
	if best != nil && best.passes() {
		fallback = nil
	}
	return best, fallback
}

// derive fills the use-case table and the ratios from the rows.
func (rep *Report) derive() {
	var bidi, push []*Row
	for _, r := range rep.Rows {
		if r.Baseline {
			continue
		}
		if r.EchoP50 > 0 && r.PushRate > 0 {
			bidi = append(bidi, r)
		}
		if r.PushRate > 0 {
			push = append(push, r)
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	perByte := func(r *Row) float64 {
		if r.PushBytes <= 0 {
			return 0
		}
		return r.PushRate / r.PushBytes
	}
	add := func(name, rule string, rows []*Row, value func(*Row) float64, higher bool, figure func(*Row) string) {
		uc := UseCase{Name: name, Rule: rule, Transport: "-"}
		best, fb := choose(rows, value, higher)
		if best != nil {
			uc.Transport = best.Name
			uc.Figure = best.Name + ": " + figure(best)
		}
		if fb != nil {
			uc.Fallback = fb.Name
			uc.Figure += "; " + fb.Name + ": " + figure(fb)
		}
		rep.UseCases = append(rep.UseCases, uc)
	}
	add("chat", "the bidirectional transport (WebSocket, SSE+POST, long-polling) with the lowest echo p50",
		bidi, func(r *Row) float64 { return us(r.EchoP50) }, false,
		func(r *Row) string { return "echo p50 " + fmtDur(r.EchoP50) })
	add("collaboration", "the bidirectional transport with the lowest echo p99 (bursts both ways: the tail decides)",
		bidi, func(r *Row) float64 { return us(r.EchoP99) }, false,
		func(r *Row) string { return "echo p99 " + fmtDur(r.EchoP99) })
	add("dashboards", "the push transport with the most push messages/s per byte on the wire (push msg/s ÷ push B/msg)",
		push, perByte, true,
		func(r *Row) string {
			return fmt.Sprintf("%s msg/s at %.1f B/msg", fmtRate(r.PushRate), r.PushBytes)
		})
	var pushNoUpgrade []*Row // push transports that get through a proxy refusing upgrades
	for _, r := range push {
		if r.NoUpgradeProxy == "yes" {
			pushNoUpgrade = append(pushNoUpgrade, r)
		}
	}
	add("progress updates", "the push transport with the most push messages/s among those that pass the upgrade-refusing proxy (a job's users sit behind any network; updates only flow down)",
		pushNoUpgrade, func(r *Row) float64 { return r.PushRate }, true,
		func(r *Row) string { return fmt.Sprintf("%s msg/s", fmtRate(r.PushRate)) })
	var rr []*Row
	if h := rep.rowNamed("http"); h != nil {
		rr = append(rr, h)
		if !h.passes() {
			rr = append(rr, bidi...) // so that a fallback exists
		}
	}
	add("request/response", "http: one POST, one answer, no session to open or hold (the fallback rule still applies)",
		rr, func(r *Row) float64 { return us(r.EchoP50) }, false,
		func(r *Row) string { return "echo p50 " + fmtDur(r.EchoP50) })

	ratio := func(a, b float64) float64 {
		if a <= 0 || b <= 0 {
			return 0
		}
		return a / b
	}
	type metric struct {
		name string
		f    func(*Row) float64
	}
	var (
		connect = metric{"connect p50", func(r *Row) float64 { return us(r.ConnectP50) }}
		echoP50 = metric{"echo p50", func(r *Row) float64 { return us(r.EchoP50) }}
		echoP99 = metric{"echo p99", func(r *Row) float64 { return us(r.EchoP99) }}
		echoHz  = metric{"echo/s", func(r *Row) float64 { return r.EchoRate }}
		pushHz  = metric{"push msg/s", func(r *Row) float64 { return r.PushRate }}
		openB   = metric{"open B", func(r *Row) float64 { return r.OpenBytes }}
		downB   = metric{"down B/msg", func(r *Row) float64 { return r.DownBytes }}
		pushB   = metric{"push B/msg", func(r *Row) float64 { return r.PushBytes }}
		idle    = metric{"idle KiB/conn", func(r *Row) float64 { return r.IdleKiB }}
	)
	for _, c := range []struct {
		name, rtkit, base string
		metrics           []metric
	}{
		{"rtkit websocket / raw gorilla", "websocket", "gorilla", []metric{connect, echoP50, echoP99, echoHz, pushHz, openB, downB, pushB, idle}},
		{"rtkit sse / minimal net/http loop", "sse", "nethttp-sse", []metric{connect, pushHz, openB, pushB, idle}},
		{"rtkit sse / raw r3labs", "sse", "r3labs-sse", []metric{connect, pushHz, openB, pushB, idle}},
	} {
		a, b := rep.rowNamed(c.rtkit), rep.rowNamed(c.base)
		if a == nil || b == nil {
			continue
		}
		rt := Ratio{Name: c.name}
		for _, m := range c.metrics {
			rt.Items = append(rt.Items, RatioItem{Metric: m.name, Value: ratio(m.f(a), m.f(b))})
		}
		rep.Ratios = append(rep.Ratios, rt)
	}
}

// fmtDur writes a latency in µs below 10 ms, else in ms.
func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// fmtRate writes a rate with k or M.
func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtNum(v float64, prec int) string {
	if v <= 0 || math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// label names a row in the tables.
func label(r *Row) string {
	if r.Baseline {
		return r.Name + " (baseline)"
	}
	return r.Name
}

// mainTable is the transport table as cells.
func (rep *Report) mainTable() table {
	var header []string
	var rows [][]string
	header = []string{"transport", "connect p50", "echo p50", "echo p99", "echo/s", "push msg/s",
		"open B", "up B/msg", "down B/msg", "push B/msg", "idle KiB/conn", "no-upgrade proxy", "buffering proxy"}
	for _, r := range rep.Rows {
		rows = append(rows, []string{label(r), fmtDur(r.ConnectP50), fmtDur(r.EchoP50), fmtDur(r.EchoP99), fmtRate(r.EchoRate),
			fmtRate(r.PushRate), fmtNum(r.OpenBytes, 0), fmtNum(r.UpBytes, 1), fmtNum(r.DownBytes, 1), fmtNum(r.PushBytes, 1),
			fmtNum(r.IdleKiB, 1), orDash(r.NoUpgradeProxy), orDash(r.BufferingProxy)})
	}
	return table{header, rows}
}

func (rep *Report) useCaseTable() table {
	var header []string
	var rows [][]string
	header = []string{"use case", "transport", "behind proxies", "deciding figures"}
	for _, u := range rep.UseCases {
		fb := u.Fallback
		if fb == "" {
			fb = "(same)"
		}
		rows = append(rows, []string{u.Name, u.Transport, fb, u.Figure})
	}
	return table{header, rows}
}

func (rep *Report) ratioTable() table {
	var header []string
	var rows [][]string
	seen := map[string]bool{}
	for _, r := range rep.Ratios {
		for _, it := range r.Items {
			if !seen[it.Metric] {
				seen[it.Metric] = true
				header = append(header, it.Metric)
			}
		}
	}
	header = append([]string{"rtkit ÷ baseline"}, header...)
	for _, r := range rep.Ratios {
		row := []string{r.Name}
		for _, m := range header[1:] {
			cell := "-"
			for _, it := range r.Items {
				if it.Metric == m && it.Value > 0 {
					cell = fmt.Sprintf("%.2f×", it.Value)
				}
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return table{header, rows}
}

// table is a header and rows of cells.
type table struct {
	header []string
	rows   [][]string
}

// The notes printed under the tables.
const (
	ruleFallback = "Fallback: when the pick fails either proxy test, \"behind proxies\" names the best transport by the same figure among those that pass both."
	ratioNote    = "Times, bytes and memory: above 1 means rtkit costs more than the raw library. Throughput (echo/s, push msg/s): below 1 means rtkit is slower."
)

func writeTab(w io.Writer, t table) {
	header, rows := t.header, t.rows
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func writeMD(w io.Writer, t table) {
	header, rows := t.header, t.rows
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "--:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = esc(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// WriteText prints the tables for a terminal.
func (rep *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Transports on loopback (%s, %d CPUs, %d echo clients, %d messages, %d idle connections):\n\n",
		rep.GoVersion, rep.NumCPU, rep.Config.Conns, rep.Config.Messages, rep.Config.Idle)
	writeTab(w, rep.mainTable())
	fmt.Fprintln(w, "\nUse cases:")
	fmt.Fprintln(w)
	writeTab(w, rep.useCaseTable())
	fmt.Fprintln(w, "\nRules:")
	for _, u := range rep.UseCases {
		fmt.Fprintf(w, "  %s → %s.\n", u.Name, u.Rule)
	}
	fmt.Fprintf(w, "  %s\n", ruleFallback)
	fmt.Fprintln(w, "\nToolkit overhead (same run):")
	fmt.Fprintln(w)
	writeTab(w, rep.ratioTable())
	fmt.Fprintf(w, "  %s\n", ratioNote)
}

// WriteFiles writes results.md, results.csv and results.svg to dir.
func (rep *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"results.md", rep.WriteMarkdown}, {"results.csv", rep.WriteCSV}, {"results.svg", rep.WriteSVG}} {
		var b strings.Builder
		if err := f.write(&b); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteMarkdown writes the report as Markdown.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	c := rep.Config
	fmt.Fprintf(w, "# rtkit transports, measured side by side\n\n")
	fmt.Fprintf(w, "`%s` — %s, %s, %d CPUs (GOMAXPROCS %d), loopback; took %v.\n\n",
		strings.Join(append([]string{"go run ./compare"}, c.Args...), " "), rep.Start.UTC().Format("2006-01-02 15:04 UTC"), rep.GoVersion, rep.NumCPU, rep.GOMAXPROCS,
		rep.Elapsed.Round(100*time.Millisecond))
	if rep.LoadAvg != "" {
		fmt.Fprintf(w, "Load average at the start: %s (the machine is shared; figures move with its load).\n\n", rep.LoadAvg)
	}
	fmt.Fprintf(w, "Settings: %d echo clients, %d echo round trips and %d pushed messages per row, %d connects, bytes over %d messages, %d idle connections, phase cap %v, proxy timeouts %v.\n\n",
		c.Conns, c.Messages, c.Messages, c.Connects, c.WireMessages, c.Idle, c.Duration, c.ProxyTimeout)
	fmt.Fprintln(w, "## Transport table")
	fmt.Fprintln(w)
	writeMD(w, rep.mainTable())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "![transport chart](results.svg)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, `- **connect p50**: dial a new TCP connection until the connection is open (WebSocket 101; SSE session event, or the baselines' stream headers; long-poll session opened; http: the first POST answered).
- **echo p50/p99, echo/s**: 64-byte messages, each client with one in flight; SSE and long-polling send up by POST and receive on the stream or the held poll; http is one POST per message.
- **push msg/s**: 64-byte messages pushed to one client as fast as it reads them.
- **bytes**, counted by the server's listener at the TCP level (headers, framing, acknowledgements included): *open B* both ways to open one connection; *up/down B/msg* per message over one-at-a-time round trips (for push-only baselines, down per pushed message); *push B/msg* written per message during the push run.
- **idle KiB/conn**: server RSS growth per idle connection, after GC, in a subprocess (see compare/idlemem). http: a keep-alive connection after one POST.
- **proxies**: rtclient forced onto the transport (http: a plain POST) connects and gets an echo through a reverse proxy that answers 403 to upgrades / one that holds response bodies until they end. Not tried for baselines.`)
	var notes []string
	for _, r := range rep.Rows {
		for _, n := range r.ProxyNotes {
			notes = append(notes, fmt.Sprintf("- %s, %s", r.Name, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nWhy a transport failed a proxy:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
	fmt.Fprintln(w, "\n## Use cases")
	fmt.Fprintln(w)
	writeMD(w, rep.useCaseTable())
	fmt.Fprintln(w, "\nRules, applied to the table above:")
	fmt.Fprintln(w)
	for _, u := range rep.UseCases {
		fmt.Fprintf(w, "- **%s** → %s.\n", u.Name, u.Rule)
	}
	fmt.Fprintf(w, "- %s\n", ruleFallback)
	fmt.Fprintln(w, "\n## Toolkit overhead")
	fmt.Fprintln(w)
	writeMD(w, rep.ratioTable())
	fmt.Fprintf(w, "\n%s\n", ratioNote)
	fmt.Fprintln(w, "\nReading the push ratios: rtkit's SSE writer sends every event queued since its last write in one write and one flush, while the net/http loop and r3labs flush each event; a producer faster than the network lets rtkit batch, so its push rate can exceed the baselines' despite its longer events (the session token in every event id). Push runs are short, so their rates vary from run to run more than the other figures.")
	return nil
}

// csvHeader names the CSV columns; times in µs, empty when not measured.
var csvHeader = []string{"transport", "baseline", "connect_p50_us", "echo_p50_us", "echo_p99_us", "echo_per_s", "push_msg_per_s",
	"open_bytes", "up_bytes_per_msg", "down_bytes_per_msg", "push_bytes_per_msg",
	"idle_rss_kib_per_conn", "idle_heap_kib_per_conn", "idle_stack_kib_per_conn", "no_upgrade_proxy", "buffering_proxy"}

// WriteCSV writes one line per row.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	num := func(v float64, prec int) string {
		if v <= 0 {
			return ""
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	us := func(d time.Duration) string { return num(float64(d)/float64(time.Microsecond), 1) }
	for _, r := range rep.Rows {
		cw.Write([]string{r.Name, strconv.FormatBool(r.Baseline), us(r.ConnectP50), us(r.EchoP50), us(r.EchoP99),
			num(r.EchoRate, 0), num(r.PushRate, 0), num(r.OpenBytes, 0), num(r.UpBytes, 1), num(r.DownBytes, 1), num(r.PushBytes, 1),
			num(r.IdleKiB, 2), num(r.IdleHeapKiB, 2), num(r.IdleStackKiB, 2), r.NoUpgradeProxy, r.BufferingProxy})
	}
	cw.Flush()
	return cw.Error()
}

// WriteSVG draws one horizontal bar chart per figure, two panels a row.
func (rep *Report) WriteSVG(w io.Writer) error {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	panels := []struct {
		title string
		v     func(*Row) float64
		f     func(float64) string
	}{
		{"connect p50 (µs, lower is better)", func(r *Row) float64 { return us(r.ConnectP50) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{"echo p50 (µs, lower is better)", func(r *Row) float64 { return us(r.EchoP50) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{"echo p99 (µs, lower is better)", func(r *Row) float64 { return us(r.EchoP99) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{"push (messages/s, higher is better)", func(r *Row) float64 { return r.PushRate }, fmtRate},
		{"bytes per pushed message (lower is better)", func(r *Row) float64 { return r.PushBytes }, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
		{"server memory per idle connection (KiB, lower is better)", func(r *Row) float64 { return r.IdleKiB }, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
	}
	const (
		panelW, labelW, barW, rowH, titleH, pad = 460, 150, 230, 18, 28, 16
	)
	panelH := titleH + rowH*len(rep.Rows) + pad
	cols := 2
	nrows := (len(panels) + cols - 1) / cols
	width, height := cols*panelW+pad, nrows*panelH+pad+40
	esc := func(s string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", pad,
		esc(fmt.Sprintf("rtkit transports on loopback (%s, %d CPUs) — blue: rtkit, grey: raw baselines", rep.GoVersion, rep.NumCPU)))
	for i, p := range panels {
		x0 := pad + (i%cols)*panelW
		y0 := 40 + (i/cols)*panelH
		fmt.Fprintf(w, `<g transform="translate(%d,%d)">`+"\n", x0, y0)
		fmt.Fprintf(w, `<text x="0" y="16" font-weight="bold">%s</text>`+"\n", esc(p.title))
		maxV := 0.0
		for _, r := range rep.Rows {
			maxV = math.Max(maxV, p.v(r))
		}
		for j, r := range rep.Rows {
			y := titleH + j*rowH
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-6, y+13, esc(label(r)))
			v := p.v(r)
			if v <= 0 || maxV <= 0 {
				fmt.Fprintf(w, `<text x="%d" y="%d" fill="#888">n/a</text>`+"\n", labelW, y+13)
				continue
			}
			bw := math.Max(1, v/maxV*barW)
			color := "#4e79a7"
			if r.Baseline {
				color = "#a0a0a0"
			}
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y+3, bw, rowH-5, color)
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW)+bw+4, y+13, esc(p.f(v)))
		}
		fmt.Fprintln(w, "</g>")
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}
