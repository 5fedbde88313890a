package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrEventTooLarge is returned by Reader.Next when one event (or one line)
// exceeds the reader's MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

// DefaultMaxEventSize is the MaxEventSize of a Reader that sets none.
const DefaultMaxEventSize = 1 << 20

// Reader parses a text/event-stream as the WHATWG HTML standard's
// EventSource does: a leading byte-order mark is skipped; lines end in CR,
// LF or CRLF (also when a CRLF is split across reads); comments and unknown
// fields are ignored; data fields are joined with LF; an id that contains
// NUL is ignored and the last event id persists across events; retry takes
// ASCII digits only; an event with no data is not dispatched; and an
// unterminated event at the end of the stream is discarded.
type Reader struct {
	// MaxEventSize bounds the bytes of one event (its lines, before
	// parsing). Zero means DefaultMaxEventSize.
	MaxEventSize int

	br      *bufio.Reader
	started bool // the BOM check is done
	skipLF  bool // the last line ended in CR: a following LF belongs to it
	line    []byte
	size    int // bytes of the event being read

	lastID  string
	retry   time.Duration
	typ     []byte
	data    []byte
	hasData bool
	evRetry time.Duration
}

// NewReader returns a Reader that parses events from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReader(r)}
}

// Retry returns the reconnection delay the stream last asked for, or zero.
func (r *Reader) Retry() time.Duration { return r.retry }

// LastEventID returns the stream's last event id.
func (r *Reader) LastEventID() string { return r.lastID }

// Next returns the next dispatched event. At the end of the stream it
// returns io.EOF (discarding an unterminated event), or the read error.
// Event.Retry is set when the event's own fields included a valid retry.
func (r *Reader) Next() (Event, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		r.field(line)
	}
}

// field processes one non-empty line.
func (r *Reader) field(line []byte) {
	if line[0] == ':' {
		return // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		r.typ = append(r.typ[:0], value...)
	case "data":
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.lastID = validUTF8(value)
		}
	case "retry":
		if ms, ok := digits(value); ok {
			r.retry = time.Duration(ms) * time.Millisecond
			r.evRetry = r.retry
		}
	}
}

// dispatch ends the event at a blank line.
func (r *Reader) dispatch() (Event, bool) {
	defer func() {
		r.typ, r.data, r.hasData, r.evRetry, r.size = r.typ[:0], r.data[:0], false, 0, 0
	}()
	if !r.hasData {
		return Event{}, false
	}
	data := r.data[:len(r.data)-1] // the last LF
	ev := Event{ID: r.lastID, Type: "message", Retry: r.evRetry}
	if len(r.typ) > 0 {
		ev.Type = validUTF8(r.typ)
	}
	if utf8.Valid(data) {
		ev.Data = bytes.Clone(data)
	} else {
		ev.Data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	return ev, true
}

// readLine returns the next line without its end. The slice is valid until
// the next call.
func (r *Reader) readLine() ([]byte, error) {
	if !r.started {
		r.started = true
		if b, err := r.br.Peek(3); err == nil && string(b) == "\uFEFF" {
			r.br.Discard(3)
		}
	}
	limit := r.MaxEventSize
	if limit <= 0 {
		limit = DefaultMaxEventSize
	}
	r.line = r.line[:0]
	for {
		if r.skipLF {
			b, err := r.br.ReadByte()
			if err != nil {
				return nil, err
			}
			r.skipLF = false
			if b != '\n' {
				r.br.UnreadByte()
			}
		}
		if _, err := r.br.Peek(1); err != nil {
			return nil, err
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		i := indexEOL(buf)
		n := i
		if i < 0 {
			n = len(buf)
		}
		r.size += n
		if i >= 0 {
			r.size++
		}
		if r.size > limit {
			return nil, ErrEventTooLarge
		}
		r.line = append(r.line, buf[:n]...)
		if i < 0 {
			r.br.Discard(n)
			continue
		}
		r.skipLF = buf[i] == '\r'
		r.br.Discard(i + 1)
		return r.line, nil
	}
}

// digits parses a retry value: ASCII digits only.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, false
	}
	return n, true
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
