package rtjs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodePath returns the node binary, or skips t where there is none.
func nodePath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH: these tests run rtkit.js under Node.js 20 or later (apt-get install nodejs)")
	}
	return p
}

// runNode runs node with args in this package's directory and returns its
// output, failing t when it exits with an error.
func runNode(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), nodePath(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The event-stream parser's unit tests, under node's test runner: the
// HTML Standard's corner cases at every split, the chunkings that made the
// old parser quadratic (bounded by characters examined per character, not
// by time), and the event-size cap.
func TestNodeParser(t *testing.T) {
	out := runNode(t, "--test", filepath.Join("testdata", "parser.test.mjs"))
	if !strings.Contains(out, "# fail 0") {
		t.Fatalf("node --test:\n%s", out)
	}
	t.Log(lastLines(out, 8))
}

// The parser against a plain reference on random streams cut at random:
// a seeded generator and mutation loop, once with a fixed seed and once
// with a new one (logged, to replay a failure with
// node testdata/parser-fuzz.mjs N SEED).
func TestNodeParserFuzz(t *testing.T) {
	iterations := "20000"
	if testing.Short() {
		iterations = "2000"
	}
	for _, seed := range []string{"1", fmt.Sprint(time.Now().UnixNano() % 1e9)} {
		out := runNode(t, filepath.Join("testdata", "parser-fuzz.mjs"), iterations, seed)
		t.Log(strings.TrimSpace(out))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// npmTool returns the path of a tool installed by npm ci from this
// package's lockfile, or skips t.
func npmTool(t *testing.T, name string) string {
	t.Helper()
	nodePath(t)
	p := filepath.Join("node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed: run npm ci in realtime/rtjs (the lockfile's test tools)", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
