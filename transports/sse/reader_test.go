package sse_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rtkit/rtkit/transports/sse"
)

// readAll parses stream and returns its dispatched events.
func readAll(t *testing.T, r io.Reader) ([]sse.Event, *sse.Reader) {
	t.Helper()
	rd := sse.NewReader(r)
	var evs []sse.Event
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return evs, rd
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

// The cases of web-platform-tests eventsource/format-*.any.js, one row per
// file, with the stream each one serves and what the page must see.
var wptCases = []struct {
	name   string
	stream string
	want   []string // "type:data" per dispatched event
	ids    []string // last event id per event, when checked
	retry  time.Duration
}{
	{name: "format-bom", stream: "\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n", want: []string{"message:1", "message:3"}},
	{name: "format-bom-2", stream: "\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n", want: []string{"message:2", "message:3"}},
	{
		name:   "format-comments",
		stream: "data:1\r:\x00\n:\r\ndata:2\n:" + strings.Repeat("x", 2049) + "\rdata:3\n:data:fail\r:" + strings.Repeat("x", 2049) + "\ndata:4\n\n",
		want:   []string{"message:1\n2\n3\n4"},
	},
	{name: "format-data-before-final-empty-line", stream: "retry:1000\ndata:test1\n\nid:test\ndata:test2", want: []string{"message:test1"}, retry: time.Second},
	{name: "format-field-data", stream: "data:\n\ndata\ndata\n\ndata:test\n\n", want: []string{"message:", "message:\n", "message:test"}},
	{name: "format-field-event-empty", stream: "event: \ndata:data\n\n", want: []string{"message:data"}},
	{name: "format-field-event", stream: "event:test\ndata:x\n\ndata:x\n\n", want: []string{"test:x", "message:x"}},
	{name: "format-field-id", stream: "id: 1\ndata: a\n\nid: 2\ndata: b\n\ndata: c\n\n", want: []string{"message:a", "message:b", "message:c"}, ids: []string{"1", "2", "2"}},
	{name: "format-field-id-2", stream: "id:1\ndata:a\n\nid:\ndata:b\n\n", want: []string{"message:a", "message:b"}, ids: []string{"1", ""}},
	{name: "format-field-id-null", stream: "id:1\ndata:a\n\nid:a\x00b\ndata:b\n\n", want: []string{"message:a", "message:b"}, ids: []string{"1", "1"}},
	{
		name:   "format-field-parsing",
		stream: "data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
		want:   []string{"message:\x00\n 2\n1\n3\n\n4"},
	},
	{name: "format-field-retry-bogus", stream: "retry:3000\nretry:1000x\ndata:x\n\n", want: []string{"message:x"}, retry: 3 * time.Second},
	{name: "format-field-retry-empty", stream: "retry\ndata:test\n\n", want: []string{"message:test"}},
	{name: "format-field-retry", stream: "retry:03000\ndata:x\n\n", want: []string{"message:x"}, retry: 3 * time.Second},
	{name: "format-field-unknown", stream: "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n", want: []string{"message:test\n\ntest"}},
	{name: "format-leading-space", stream: "data:\ttest\rdata: \ndata:test\n\n", want: []string{"message:\ttest\n\ntest"}},
	{name: "format-newlines", stream: "data:test\r\ndata\ndata:test\r\n\r\n", want: []string{"message:test\n\ntest"}},
	{name: "format-null-character", stream: "data:\x00\n\n\n\n", want: []string{"message:\x00"}},
	{name: "format-utf-8", stream: "data:ok\u2026\n\n", want: []string{"message:ok\u2026"}},
	{name: "invalid utf-8 becomes U+FFFD", stream: "data:a\xffb\n\n", want: []string{"message:a\uFFFDb"}},
	{name: "no data, no event", stream: "event:x\nid:1\n\nretry:5\n\n", want: nil, retry: 5 * time.Millisecond},
}

func TestReaderWPT(t *testing.T) {
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"halves":   func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, tc := range wptCases {
		for how, mk := range readers {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				evs, rd := readAll(t, mk(tc.stream))
				var got []string
				for _, ev := range evs {
					got = append(got, ev.Type+":"+string(ev.Data))
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				for i, id := range tc.ids {
					if evs[i].ID != id {
						t.Errorf("event %d: id %q, want %q", i, evs[i].ID, id)
					}
				}
				if rd.Retry() != tc.retry {
					t.Errorf("retry %v, want %v", rd.Retry(), tc.retry)
				}
			})
		}
	}
}

// A CR at the end of one read and the LF at the start of the next are one
// line end, not two (which would dispatch an event too early).
func TestReaderCRLFSplitAcrossReads(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		for _, chunk := range []string{"data:a\r", "\ndata:b\r", "\n\r", "\n"} {
			pw.Write([]byte(chunk))
		}
		pw.Close()
	}()
	evs, _ := readAll(t, pr)
	if len(evs) != 1 || string(evs[0].Data) != "a\nb" {
		t.Fatalf("got %+v", evs)
	}
}

// An event is handed out as soon as its blank line arrives, without
// waiting for more bytes (a CR line end must not make the reader peek).
func TestReaderDispatchesWithoutWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	rd := sse.NewReader(pr)
	go pw.Write([]byte("data:x\r\r"))
	done := make(chan sse.Event, 1)
	go func() {
		ev, _ := rd.Next()
		done <- ev
	}()
	select {
	case ev := <-done:
		if string(ev.Data) != "x" {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader waited for bytes after a complete event")
	}
}

func TestReaderEventTooLarge(t *testing.T) {
	rd := sse.NewReader(strings.NewReader("data:" + strings.Repeat("x", 100) + "\n\n"))
	rd.MaxEventSize = 64
	if _, err := rd.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
		t.Fatalf("err %v, want ErrEventTooLarge", err)
	}
	// Many small lines add up too.
	rd = sse.NewReader(strings.NewReader(strings.Repeat("data:xx\n", 20) + "\n"))
	rd.MaxEventSize = 64
	if _, err := rd.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
		t.Fatalf("err %v, want ErrEventTooLarge", err)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	rd := sse.NewReader(iotest.ErrReader(boom))
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}
