package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rtkit/rtkit/transports/sse"
)

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		ev   sse.Event
		want string
	}{
		{sse.Event{Data: []byte("hi")}, "data: hi\n\n"},
		{sse.Event{Data: []byte{}}, "data: \n\n"},
		{sse.Event{Retry: 2 * time.Second}, "retry: 2000\n\n"},
		{sse.Event{ID: "t.1", Type: "binary", Data: []byte("AA==")}, "id: t.1\nevent: binary\ndata: AA==\n\n"},
		{sse.Event{Data: []byte("a\nb\r\nc\rd")}, "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{sse.Event{Data: []byte("x\nevent: evil")}, "data: x\ndata: event: evil\n\n"},
		{sse.Event{Data: []byte(" lead")}, "data:  lead\n\n"},
		{sse.Event{Data: []byte("end\n")}, "data: end\ndata: \n\n"},
	} {
		got, err := sse.AppendEvent(nil, tc.ev)
		if err != nil || string(got) != tc.want {
			t.Errorf("AppendEvent(%+v) = %q, %v; want %q", tc.ev, got, err, tc.want)
		}
	}
}

func TestAppendEventRefusesBadFields(t *testing.T) {
	for _, ev := range []sse.Event{
		{ID: "a\nb", Data: []byte("x")},
		{ID: "a\x00b", Data: []byte("x")},
		{Type: "a\rb", Data: []byte("x")},
	} {
		dst := []byte("keep")
		got, err := sse.AppendEvent(dst, ev)
		if !errors.Is(err, sse.ErrInvalidField) || string(got) != "keep" {
			t.Errorf("AppendEvent(%+v) = %q, %v", ev, got, err)
		}
	}
}

func TestAppendComment(t *testing.T) {
	if got := string(sse.AppendComment(nil, "a\nb")); got != ": a\n: b\n" {
		t.Fatalf("got %q", got)
	}
	// A comment between events changes nothing the reader sees.
	var buf []byte
	buf, _ = sse.AppendEvent(buf, sse.Event{Data: []byte("1")})
	buf = sse.AppendComment(buf, "ping")
	buf, _ = sse.AppendEvent(buf, sse.Event{Data: []byte("2")})
	evs, _ := readAll(t, bytes.NewReader(buf))
	if len(evs) != 2 || string(evs[0].Data) != "1" || string(evs[1].Data) != "2" {
		t.Fatalf("got %+v", evs)
	}
}

// What AppendEvent writes, the Reader reads back unchanged, whatever the
// payload: line ends in data come back as LF, as the format defines.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "hello", "a\nb", "a\r\nb", "\r", "\n\n", ": x", "data: y", "\uFEFF", "\x00"} {
		f.Add("id", "type", s)
	}
	f.Fuzz(func(t *testing.T, id, typ, data string) {
		buf, err := sse.AppendEvent(nil, sse.Event{ID: id, Type: typ, Data: []byte(data)})
		if err != nil {
			if !errors.Is(err, sse.ErrInvalidField) {
				t.Fatal(err)
			}
			return
		}
		// A BOM at the very start is the stream's, so send a comment first.
		stream := append([]byte(":\n"), buf...)
		evs, _ := readAll(t, bytes.NewReader(stream))
		if len(evs) != 1 {
			t.Fatalf("%q: %d events", stream, len(evs))
		}
		wantData := bytes.ReplaceAll([]byte(data), []byte("\r\n"), []byte("\n"))
		wantData = bytes.ReplaceAll(wantData, []byte("\r"), []byte("\n"))
		wantData = bytes.ToValidUTF8(wantData, []byte("\uFFFD"))
		wantType := string(bytes.ToValidUTF8([]byte(typ), []byte("\uFFFD")))
		if wantType == "" {
			wantType = "message"
		}
		wantID := string(bytes.ToValidUTF8([]byte(id), []byte("\uFFFD")))
		ev := evs[0]
		if !bytes.Equal(ev.Data, wantData) || ev.Type != wantType || ev.ID != wantID {
			t.Fatalf("%q: got %+v", stream, ev)
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := sse.Event{ID: "K7QK7QK7QK7QK7QK7QK7QK7QK7.12345", Data: bytes.Repeat([]byte("x"), 128)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Data)))
	for b.Loop() {
		buf, _ = sse.AppendEvent(buf[:0], ev)
	}
}

func BenchmarkReader(b *testing.B) {
	var stream []byte
	for i := range 1000 {
		stream, _ = sse.AppendEvent(stream, sse.Event{ID: fmt.Sprint("t.", i), Data: bytes.Repeat([]byte("x"), 128)})
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		rd := sse.NewReader(bytes.NewReader(stream))
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

func ExampleAppendEvent() {
	buf, _ := sse.AppendEvent(nil, sse.Event{ID: "7", Type: "update", Data: []byte("line one\nline two")})
	fmt.Print(string(buf))
	// Output:
	// id: 7
	// event: update
	// data: line one
	// data: line two
}
