package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary play the server and client roles that a
// run starts it in, as the command does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the whole comparison with -quick and checks that the
// report has every row, with a figure for every server, and that the
// files say the same.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick comparison takes about 20 s")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-quick", "-out", dir}, strings.NewReader(""), &stdout, &stderr)
	t.Log("\n" + stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	report := stdout.String()
	cfg := defaults()
	cfg.quick()
	for _, rw := range rows(&cfg) {
		var line string
		for l := range strings.SplitSeq(report, "\n") {
			if strings.HasPrefix(l, "| "+rw.title+" |") {
				line = l
				break
			}
		}
		if line == "" {
			t.Errorf("no row %q", rw.title)
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")[1:]
		var want int
		for _, p := range peers {
			if p.sse == (rw.table == "sse") {
				want++
			}
		}
		if len(cells) != want {
			t.Errorf("row %q has %d cells, want %d: %s", rw.title, len(cells), want, line)
		}
		for i, c := range cells {
			if c = strings.TrimSpace(c); c == "" || strings.Contains(c, "failed") || c == "—" {
				t.Errorf("row %q, column %d: %q", rw.title, i+1, c)
			}
		}
	}
	if strings.Contains(report, "## Failures") {
		t.Errorf("failures:\n%s", report[strings.Index(report, "## Failures"):])
	}
	if !strings.Contains(report, "`(cd compare/peers && go run . -quick -out "+dir+")`") {
		t.Error("the report does not start with the command that made it")
	}

	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != report {
		t.Error("results.md differs from what was printed")
	}
	f, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for _, rw := range rows(&cfg) {
		for _, p := range peers {
			if p.sse == (rw.table == "sse") {
				want++
			}
		}
	}
	if len(recs) != want+1 {
		t.Errorf("results.csv has %d records, want a header and %d", len(recs), want)
	}
}

func TestCell(t *testing.T) {
	rw := row{workload: "w", metric: "rate", base: "base"}
	res := &Results{Runs: map[string]map[string][]metrics{"w": {
		"base": {{"rate": 100}, {"rate": 200}, nil, {"rate": 100}},
		"x":    {{"rate": 50}, {"rate": 400}, {"rate": 1}, nil},
	}}}
	c := res.cell(rw, "x")
	// Round 3 has no baseline, round 4 no figure: ratios 0.5 and 2.
	if c.rounds != 4 || c.failures != 1 || len(c.values) != 3 || len(c.ratios) != 2 {
		t.Fatalf("cell %+v", c)
	}
	if got, want := c.ratioText(), "1.25 (0.50–2.00) [1 of 4 rounds failed]"; got != want {
		t.Errorf("ratioText %q, want %q", got, want)
	}
	if got := res.cell(rw, "base").ratioText(); !strings.HasPrefix(got, "1.00 (1.00–1.00)") {
		t.Errorf("the baseline's own ratio: %q", got)
	}
	if got := res.cell(rw, "absent").ratioText(); got != "" {
		t.Errorf("a server not measured: %q", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestReplyID(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
	}{
		{`{"id":12,"rpc":{"data":"x"}}`, 12},
		{`{"id":3}`, 3},
		{`{"push":{"channel":"t","pub":{"data":"x"}}}`, 0},
		{`{}`, 0},
	} {
		if got := replyID([]byte(tc.line)); got != tc.want {
			t.Errorf("replyID(%s) = %d, want %d", tc.line, got, tc.want)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{64, 1024} {
		p := payload(n)
		if len(p) != n || p[0] != '"' || p[n-1] != '"' {
			t.Errorf("payload(%d) = %.20q... (%d bytes)", n, p, len(p))
		}
	}
}
