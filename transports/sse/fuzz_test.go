package sse_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/rtkit/rtkit/transports/sse"
)

// fuzzMaxEvent bounds the events of the fuzzed reader, so that inputs
// also reach ErrEventTooLarge.
const fuzzMaxEvent = 256

// parse reads stream with r's chunking and returns its events and the
// error that ended it.
func parse(r io.Reader) ([]sse.Event, *sse.Reader, error) {
	rd := sse.NewReader(r)
	rd.MaxEventSize = fuzzMaxEvent
	var evs []sse.Event
	for {
		ev, err := rd.Next()
		if err != nil {
			return evs, rd, err
		}
		evs = append(evs, ev)
	}
}

// FuzzReader feeds the event-stream parser (the Go client's, on what any
// server or proxy sends) arbitrary bytes. It must not panic; every event
// it dispatches has UTF-8 data, a non-empty UTF-8 type and an id without
// NUL, CR or LF, was read within MaxEventSize, and comes from the stream (so the
// output is bounded by the input); the stream ends in io.EOF or
// ErrEventTooLarge; the result does not depend on how the bytes are
// split across reads; and re-encoding the events with AppendEvent and
// parsing them again gives the same events.
func FuzzReader(f *testing.F) {
	for _, tc := range wptCases {
		f.Add([]byte(tc.stream))
	}
	for _, s := range []string{
		"", "\n", "\r\r", "data\n\n", "data:x", "data:x\r", ":\n\ndata: a\r\ndata: b\r\n\r\n",
		"id:a\x00b\ndata:x\n\n", "event:\xff\ndata:\xfe\n\n", "retry:99999999999999999999\ndata:x\n\n",
		"\xef\xbb\xbfdata:bom\n\n", "\xef\xbbdata:half bom\n\n", "data:" + strings.Repeat("x", fuzzMaxEvent) + "\n\n",
		"id: K7Q.12\nevent: session\ndata: {\"token\":\"K7Q\"}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		evs, rd, err := parse(bytes.NewReader(stream))
		if err != io.EOF && !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("stream ended with %v", err)
		}
		total := 0
		for _, ev := range evs {
			if !utf8.Valid(ev.Data) || !utf8.ValidString(ev.Type) || !utf8.ValidString(ev.ID) {
				t.Fatalf("not UTF-8: %+v", ev)
			}
			if ev.Type == "" || strings.ContainsAny(ev.ID, "\x00\r\n") || strings.ContainsAny(ev.Type, "\r\n") {
				t.Fatalf("bad field: %+v", ev)
			}
			// MaxEventSize bounds the bytes read; each invalid byte
			// becomes U+FFFD, three bytes.
			if len(ev.Data) > 3*fuzzMaxEvent {
				t.Fatalf("%d bytes of data, over three times MaxEventSize %d", len(ev.Data), fuzzMaxEvent)
			}
			total += len(ev.Data)
		}
		// U+FFFD for one invalid byte is three bytes: the output is at most
		// three times the input.
		if total > 3*len(stream) {
			t.Fatalf("%d bytes of data from a %d-byte stream", total, len(stream))
		}
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
			"halves":   iotest.HalfReader(bytes.NewReader(stream)),
		} {
			evs2, rd2, err2 := parse(r)
			if !slices.EqualFunc(evs, evs2, eventEqual) || !errors.Is(err2, err) && err2 != err ||
				rd2.LastEventID() != rd.LastEventID() || rd2.Retry() != rd.Retry() {
				t.Fatalf("read %s: %+v (%v), whole: %+v (%v)", name, evs2, err2, evs, err)
			}
		}
		// What the reader hands out, a server can send again (but for an
		// event type with NUL, which the reader takes and AppendEvent
		// refuses, and an id reset to empty, which AppendEvent cannot
		// write).
		var re []byte
		var sent []sse.Event
		for _, ev := range evs {
			if strings.Contains(ev.Type, "\x00") {
				continue
			}
			enc := sse.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data}
			if enc.Type == "message" {
				enc.Type = ""
			}
			var err error
			if re, err = sse.AppendEvent(re, enc); err != nil {
				t.Fatalf("AppendEvent(%+v): %v", enc, err)
			}
			sent = append(sent, ev)
		}
		rd3 := sse.NewReader(bytes.NewReader(append([]byte(":\n"), re...)))
		for i, want := range sent {
			got, err := rd3.Next()
			if err != nil || !bytes.Equal(got.Data, want.Data) || got.Type != want.Type || want.ID != "" && got.ID != want.ID {
				t.Fatalf("event %d re-encoded as %q: got %+v, %v; want %+v", i, re, got, err, want)
			}
		}
		if _, err := rd3.Next(); err != io.EOF {
			t.Fatalf("re-encoded stream: extra %v", err)
		}
	})
}

func eventEqual(a, b sse.Event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Retry == b.Retry && bytes.Equal(a.Data, b.Data)
}

// FuzzParseID feeds ParseID (the server reads it from Last-Event-ID, a
// request header anyone can send) arbitrary ids. It must not panic; what
// it accepts is "<token>.<seq>" with a non-empty token, and re-encoding
// the result parses back to it; and every id a stream sends (any token,
// any seq) parses back exactly.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"", ".", "a.", ".1", "a.1", "K7QK7Q.12345", "a.b.7", "a.-1", "a.+1", "a.18446744073709551615",
		"a.18446744073709551616", "a. 1", "a.1 ", "a.0x10", "a.1_000", "\xff.3", "a.\u0661"} {
		f.Add(s, uint64(7))
	}
	f.Fuzz(func(t *testing.T, id string, seq uint64) {
		token, n, ok := sse.ParseID(id)
		if ok {
			if token == "" || !strings.HasPrefix(id, token+".") {
				t.Fatalf("ParseID(%q) = %q, %d", id, token, n)
			}
			if tail := id[len(token)+1:]; strings.TrimLeft(tail, "0123456789") != "" || tail == "" {
				t.Fatalf("ParseID(%q) accepted seq %q", id, tail)
			}
			if t2, n2, ok2 := sse.ParseID(token + "." + strconv.FormatUint(n, 10)); !ok2 || t2 != token || n2 != n {
				t.Fatalf("re-encoded %q, %d: got %q, %d, %v", token, n, t2, n2, ok2)
			}
		} else if token != "" || n != 0 {
			t.Fatalf("ParseID(%q) refused but returned %q, %d", id, token, n)
		}
		// id as a token: what the server would send for it.
		if id != "" {
			if t2, n2, ok2 := sse.ParseID(id + "." + strconv.FormatUint(seq, 10)); !ok2 || t2 != id || n2 != seq {
				t.Fatalf("ParseID of token %q, seq %d: got %q, %d, %v", id, seq, t2, n2, ok2)
			}
		}
	})
}
