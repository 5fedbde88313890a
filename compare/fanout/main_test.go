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
// Measure starts it in.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestFanout runs both modes with a few subscribers on each transport and
// checks that every connection got every message exactly once and in
// order: the client checks each connection's seq numbers as they arrive,
// and again after the server has shut the route down.
func TestFanout(t *testing.T) {
	const n, messages = 200, 5
	for _, transport := range []string{"websocket", "sse"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			var progress bytes.Buffer
			cfg := Config{
				Exe: os.Args[0], Transport: transport, N: n, Messages: messages, Size: 100,
				Modes: []string{modeShared, modePerConn}, PerIP: 100, Progress: &progress,
				ConnectTimeout: 15 * time.Second, DeliverTimeout: 10 * time.Second, CloseTimeout: 10 * time.Second,
			}
			res, err := Measure(ctx, cfg)
			t.Log("\n" + progress.String())
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 {
				t.Fatalf("%d results, want 2", len(res))
			}
			for i, r := range res {
				if r.Mode != cfg.Modes[i] {
					t.Errorf("result %d is for %q, want %q", i, r.Mode, cfg.Modes[i])
				}
				if r.Deliveries != n*messages {
					t.Errorf("%s: %d deliveries expected, want %d", r.Mode, r.Deliveries, n*messages)
				}
				for _, c := range []struct {
					when string
					rep  ClientReport
				}{{"at done", r.Client}, {"after the shutdown", r.Final}} {
					if c.rep.Errors != 0 || c.rep.Deliveries != n*messages || c.rep.Complete != n {
						t.Errorf("%s %s: %d deliveries, %d of %d connections complete, %d errors (first: %s)",
							r.Mode, c.when, c.rep.Deliveries, c.rep.Complete, n, c.rep.Errors, c.rep.FirstError)
					}
				}
				if r.Final.Ended != n {
					t.Errorf("%s: %d of %d streams ended after the shutdown", r.Mode, r.Final.Ended, n)
				}
				if r.Server.Closed != 0 || r.Server.Subscribed != n || r.Server.Conns != n {
					t.Errorf("%s: server stats %+v", r.Mode, r.Server)
				}
				if r.Wall <= 0 || r.Server.User+r.Server.Sys <= 0 {
					t.Errorf("%s: wall %v, server CPU %v", r.Mode, r.Wall, r.Server.User+r.Server.Sys)
				}
			}
			var report bytes.Buffer
			PrintReport(&report, cfg, res)
			t.Log("\n" + report.String())
			if !strings.Contains(report.String(), "shared/perconn deliveries/s") {
				t.Errorf("the report lacks the ratio:\n%s", report.String())
			}
		})
	}
}

// TestSeqCheck shows that the client's check catches every way a stream
// can go wrong.
func TestSeqCheck(t *testing.T) {
	env := func(i int) []byte { return envelopeBytes(i, 20) }
	feed := func(msgs ...[]byte) (seqCheck, error) {
		s := seqCheck{want: 3}
		var first error
		for _, m := range msgs {
			if err := s.observe(m); err != nil && first == nil {
				first = err
			}
		}
		return s, first
	}
	if s, err := feed(env(1), env(2), env(3)); err != nil || !s.done() {
		t.Fatalf("a good stream: done %v, err %v", s.done(), err)
	}
	bad := map[string][][]byte{
		"duplicate": {env(1), env(1), env(2)},
		"reordered": {env(2), env(1), env(3)},
		"gap":       {env(1), env(3)},
		"extra":     {env(1), env(2), env(3), env(4)},
		"late dup":  {env(1), env(2), env(3), env(3)},
		"other":     {[]byte(`{"topic":"u","seq":1,"data":"x"}`)},
		"garbage":   {[]byte(`hello`)},
	}
	for name, msgs := range bad {
		if _, err := feed(msgs...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEnvelopeSize(t *testing.T) {
	if p := payload(7, 100); len(p) != 100 || !strings.HasPrefix(p, "m7-") {
		t.Errorf("payload(7, 100) = %q (%d bytes)", p, len(p))
	}
	if got, want := string(envelopeBytes(12, 10)), `{"topic":"t","seq":12,"data":"m12-xxxxxx"}`; got != want {
		t.Errorf("envelope %s, want %s", got, want)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"-modes", "nope", "-n", "1"},
		{"-transport", "nope", "-n", "1"},
		{"-messages", "5000", "-n", "1"},
		{"-role", "server", "-transport", "nope"},
		{"-role", "nope"},
	} {
		if code := run(args, strings.NewReader(""), &out, &errOut); code == 0 {
			t.Errorf("run %q succeeded", args)
		}
	}
}
