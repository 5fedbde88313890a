package realtime

import (
	"errors"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime/internal/protocol"
)

// A follower's read attaches only if nothing attached since its previous
// read: a follower whose client left (it has not noticed yet) cannot take
// the session back from the node the client came back through, nor from
// a stream on the owner itself.
func TestFollowerCannotTakeASessionBack(t *testing.T) {
	c, _ := startConn(t, Funcs{}, Options{ResumeWindow: time.Hour})
	s := &session{c: c, wake: make(chan struct{}), pending: map[uint64]Message{}}
	defer func() {
		s.mu.Lock()
		if s.grace != nil {
			s.grace.Stop()
		}
		s.mu.Unlock()
	}()
	attach := func(prev uint64) (uint64, error) {
		gen, err := s.attachAfter(attachFollow, prev)
		if err == nil {
			s.detach(gen) // a read ends
		}
		return gen, err
	}
	left, err := attach(0) // the first follower's first read
	if err != nil {
		t.Fatal(err)
	}
	back, err := attach(0) // the client came back through another node
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attach(left); !errors.Is(err, protocol.ErrSuperseded) {
		t.Fatalf("the left follower's next read: %v, want ErrSuperseded", err)
	}
	next, err := attach(back)
	if err != nil {
		t.Fatalf("the current follower's next read: %v", err)
	}
	last, err := attach(next)
	if err != nil {
		t.Fatalf("and the one after: %v", err)
	}
	gen, err := s.attach(attachStream) // the client came back to the owner
	if err != nil {
		t.Fatal(err)
	}
	s.detach(gen)
	if _, err := attach(last); !errors.Is(err, protocol.ErrSuperseded) {
		t.Fatalf("a follower after a local stream: %v, want ErrSuperseded", err)
	}
}
