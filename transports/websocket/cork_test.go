package websocket

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return nil
}

func (c *deadlineConn) SetDeadline(t time.Time) error { return c.SetWriteDeadline(t) }

// The socket's write deadline moves only when it would move later by at
// least the slack; an earlier or a zero deadline, or one after
// SetDeadline, is always set.
func TestCorkConnDeadlineSlack(t *testing.T) {
	raw := &deadlineConn{}
	c := &corkConn{Conn: raw, slack: time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Time
		set  bool
		call func(time.Time) error
	}{
		{t0, true, c.SetWriteDeadline},                              // first
		{t0.Add(999 * time.Millisecond), false, c.SetWriteDeadline}, // within the slack
		{t0.Add(time.Second), true, c.SetWriteDeadline},             // a full slack later
		{t0.Add(500 * time.Millisecond), true, c.SetWriteDeadline},  // earlier
		{time.Time{}, true, c.SetWriteDeadline},                     // none
		{t0, true, c.SetWriteDeadline},                              // after none
		{t0.Add(100 * time.Millisecond), false, c.SetWriteDeadline},
		{t0.Add(100 * time.Millisecond), true, c.SetDeadline}, // both, always
		{t0.Add(200 * time.Millisecond), false, c.SetWriteDeadline},
	}
	for i, s := range steps {
		before := len(raw.set)
		if err := s.call(s.at); err != nil {
			t.Fatal(err)
		}
		if got := len(raw.set) > before; got != s.set {
			t.Errorf("step %d (%v): socket deadline set = %v, want %v", i, s.at, got, s.set)
		} else if got && !raw.set[len(raw.set)-1].Equal(s.at) {
			t.Errorf("step %d: socket deadline %v, want %v", i, raw.set[len(raw.set)-1], s.at)
		}
	}
}
