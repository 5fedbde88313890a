package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the server and client roles that
// Measure starts it in, as the command does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestMeasureAllModes(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var progress bytes.Buffer
	res, err := Measure(ctx, Config{Exe: os.Args[0], N: n, Modes: allModes, PerIP: 100, Progress: &progress, Timeout: 20 * time.Second})
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(allModes) {
		t.Fatalf("%d results, want %d", len(res), len(allModes))
	}
	for i, r := range res {
		if r.Mode != allModes[i] || r.Conns != n || r.After.Conns != n {
			t.Errorf("result %d: mode %q, %d conns (server counted %d), want %q with %d", i, r.Mode, r.Conns, r.After.Conns, allModes[i], n)
		}
		if r.Before.RSS == 0 || r.After.RSS == 0 {
			t.Errorf("%s: no VmRSS: %+v %+v", r.Mode, r.Before, r.After)
		}
		if !(r.RSSPerConn > 0 && r.HeapPerConn > 0 && r.StackPerConn > 0) {
			t.Errorf("%s: per-connection figures not all positive: RSS %.2f KiB, heap %.2f KiB, stack %.2f KiB",
				r.Mode, r.RSSPerConn, r.HeapPerConn, r.StackPerConn)
		}
	}
	var table bytes.Buffer
	PrintTable(&table, n, res)
	t.Log("\n" + table.String())
	for _, want := range []string{"websocket/gorilla", "sse/gorilla"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-modes", "nope", "-n", "1"}, strings.NewReader(""), &out, &errOut); code == 0 {
		t.Fatalf("run accepted an unknown mode; stderr: %s", errOut.String())
	}
	if code := run([]string{"-role", "server", "-mode", "nope"}, strings.NewReader(""), &out, &errOut); code == 0 {
		t.Fatal("the server accepted an unknown mode")
	}
}
