package realtime

import (
	"encoding/json"
	"sync"
)

// MessageType says how a message's bytes are to be read. The values match
// the WebSocket opcodes (RFC 6455 section 11.8).
type MessageType int

const (
	// TextMessage is UTF-8 text.
	TextMessage MessageType = 1
	// BinaryMessage is opaque bytes.
	BinaryMessage MessageType = 2
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case TextMessage:
		return "text"
	case BinaryMessage:
		return "binary"
	}
	return "invalid"
}

// Message is one message in either direction. It is a struct so that it can
// grow without breaking callers.
//
// A Message received by a Handler owns its Data: the handler may keep it.
// A Message passed to Conn.Send must not be modified until the connection is
// closed or the message has been written, since it is queued, not copied.
type Message struct {
	Type MessageType
	Data []byte

	shared *encodings // see Shared
}

// Shared returns m marked for sending to many connections: each transport
// encodes it once (a WebSocket frame, an SSE event body) and every copy of
// the result reuses that encoding, instead of once per connection. Topics
// shares what it fans out; use it to broadcast by hand, too. The data must
// not change afterwards.
func Shared(m Message) Message {
	if m.shared == nil {
		m.shared = &encodings{}
	}
	return m
}

// encodings caches a shared message's encoding per transport.
type encodings struct {
	mu   sync.Mutex
	byKd map[Kind]*encoding
}

type encoding struct {
	once sync.Once
	v    any
	err  error
}

// encoded returns encode(m), computed once per transport kind for a shared
// message and on every call otherwise (wire.Encoded).
func (m Message) encoded(k Kind, encode func(Message) (any, error)) (any, error) {
	if m.shared == nil {
		return encode(m)
	}
	m.shared.mu.Lock()
	if m.shared.byKd == nil {
		m.shared.byKd = make(map[Kind]*encoding, 2)
	}
	e := m.shared.byKd[k]
	if e == nil {
		e = &encoding{}
		m.shared.byKd[k] = e
	}
	m.shared.mu.Unlock()
	e.once.Do(func() { e.v, e.err = encode(m) })
	return e.v, e.err
}

// Text returns a text message holding s.
func Text(s string) Message { return Message{Type: TextMessage, Data: []byte(s)} }

// Binary returns a binary message holding b.
func Binary(b []byte) Message { return Message{Type: BinaryMessage, Data: b} }

// JSON returns a text message holding the JSON encoding of v.
func JSON(v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, err
	}
	return Message{Type: TextMessage, Data: b}, nil
}

// Text returns the message's data as a string.
func (m Message) Text() string { return string(m.Data) }

// Decode unmarshals the message's data as JSON into v. A malformed payload
// returns an error wrapping ErrMalformed, so handlers can answer it instead of
// closing the connection.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return &malformedError{err}
	}
	return nil
}

type malformedError struct{ err error }

func (e *malformedError) Error() string   { return "realtime: malformed JSON: " + e.err.Error() }
func (e *malformedError) Unwrap() []error { return []error{ErrMalformed, e.err} }
