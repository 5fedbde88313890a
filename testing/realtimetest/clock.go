package realtimetest

import (
	"sort"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// Clock is a fake realtime.Clock. Time stands still until Advance moves it.
// Set it as Options.Clock. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*timer
}

var _ realtime.Clock = (*Clock)(nil)

// NewClock returns a fake clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

type timer struct {
	c    *Clock
	at   time.Time
	seq  uint64 // orders timers due at the same instant
	f    func()
	done bool // fired or stopped
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when Advance moves the clock d or more past
// now.
func (c *Clock) AfterFunc(d time.Duration, f func()) realtime.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop cancels the timer and reports whether it was still pending.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.remove(t)
	return true
}

// Advance moves the clock forward by d. Every timer that falls due, also
// one scheduled by another timer's function within the window, runs in
// due order on the calling goroutine, with the clock reading its due time;
// Advance returns when they all have. So after
//
//	clock.Advance(5 * time.Second)
//
// a heartbeat set up with Conn.Every(5*time.Second, ...) has sent its
// message. The clock's lock is not held while a timer's function runs.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		t := c.earliest()
		if t == nil || t.at.After(end) {
			break
		}
		t.done = true
		c.remove(t)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// Pending returns the number of timers waiting to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *Clock) earliest() *timer {
	if len(c.timers) == 0 {
		return nil
	}
	sort.Slice(c.timers, func(i, j int) bool {
		a, b := c.timers[i], c.timers[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		return a.seq < b.seq
	})
	return c.timers[0]
}

func (c *Clock) remove(t *timer) {
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return
		}
	}
}
