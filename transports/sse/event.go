package sse

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidField is returned by AppendEvent for an id or event type that
// contains CR, LF or NUL, which the event-stream format cannot carry.
var ErrInvalidField = errors.New("sse: id or event type contains CR, LF or NUL")

// Event is one server-sent event.
type Event struct {
	// ID is the event's id. The Reader reports the stream's last event id,
	// which persists across events until an id field changes it.
	ID string
	// Type is the event type; empty means "message".
	Type string
	// Data is the payload. AppendEvent writes a nil Data as no data field at
	// all (so a browser dispatches nothing, which suits a retry-only event)
	// and a non-nil empty Data as one empty data field.
	Data []byte
	// Retry, when positive, asks the client to wait that long before it
	// reconnects. AppendEvent writes it in whole milliseconds.
	Retry time.Duration
}

// AppendEvent appends ev in the text/event-stream format to dst. Data is
// split on CR, LF and CRLF into one data field per line, so no payload can
// inject a field; an id or type that contains CR, LF or NUL is refused with
// ErrInvalidField and dst is returned unchanged.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if !validField(ev.ID) || !validField(ev.Type) {
		return dst, ErrInvalidField
	}
	if ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	if ev.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, ev.Type...)
		dst = append(dst, '\n')
	}
	if ev.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, ev.Retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	if ev.Data != nil {
		dst = appendLines(dst, "data: ", ev.Data)
	}
	return append(dst, '\n'), nil
}

// AppendComment appends a comment, which clients ignore but which keeps
// proxies from idling a quiet stream out. A multi-line text becomes one
// comment line per line.
func AppendComment(dst []byte, text string) []byte {
	return appendLines(dst, ": ", []byte(text))
}

// appendLines writes each line of data (split on CR, LF or CRLF) as
// prefix + line + LF.
func appendLines(dst []byte, prefix string, data []byte) []byte {
	for {
		i := indexEOL(data)
		dst = append(dst, prefix...)
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, '\n')
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

func validField(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}
