package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rtkit/rtkit/realtime"
)

// maxSteps bounds a job, so one message cannot start an endless one.
const maxSteps = 1000

// What the client sends and receives.
type (
	startRequest struct {
		Start int `json:"start"` // steps
	}
	stepReport struct {
		Step    int `json:"step"`
		Of      int `json:"of"`
		Percent int `json:"percent"`
	}
	doneReport struct {
		Done  bool `json:"done"`
		Steps int  `json:"steps"`
	}
	errorReply struct {
		Error string `json:"error"`
	}
)

// jobs runs the jobs of a route, one at a time per connection, each step
// taking step on clock.
type jobs struct {
	clock realtime.Clock
	step  time.Duration
	// ended, when set, is called after a job stops with the steps it
	// reported and why it stopped: nil when it finished, the context's
	// error when the connection went away. (Tests watch it.)
	ended func(steps int, err error)
}

// handler returns the handler of the jobs route.
func (j *jobs) handler() realtime.Handler {
	return realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		var running atomic.Bool // the job's goroutine clears it
		return realtime.Funcs{
			OnMessage: func(c *realtime.Conn, m realtime.Message) error {
				var req startRequest
				if err := m.Decode(&req); err != nil {
					return c.SendJSON(errorReply{Error: `send {"start": N}`})
				}
				if req.Start < 1 || req.Start > maxSteps {
					return c.SendJSON(errorReply{Error: fmt.Sprintf("start: 1 to %d steps", maxSteps)})
				}
				if !running.CompareAndSwap(false, true) {
					return c.SendJSON(errorReply{Error: "a job is already running"})
				}
				// The first step's timer starts here, before the
				// goroutine, so that a fake clock advanced after this
				// message has something to fire.
				tick, timer := j.after(j.step)
				c.Go(func(ctx context.Context) error {
					steps, err := j.run(ctx, c, req.Start, tick, timer)
					running.Store(false) // before "done": the client may start another at once
					if err == nil {
						c.SendJSON(doneReport{Done: true, Steps: steps})
					}
					c.Logger().Info("progress: job ended", "steps", steps, "of", req.Start, "err", err)
					if j.ended != nil {
						j.ended(steps, err)
					}
					return nil
				})
				return nil
			},
		}
	})
}

// run is one job: n steps, each reported when it is done. It stops early,
// with the context's error, when the connection closes. The caller reports
// the end.
func (j *jobs) run(ctx context.Context, c *realtime.Conn, n int, tick <-chan struct{}, timer realtime.Timer) (int, error) {
	for i := 1; i <= n; i++ {
		select {
		case <-ctx.Done():
			timer.Stop()
			return i - 1, ctx.Err()
		case <-tick: // the real work of a step would be here
		}
		if i < n {
			// The next step starts before this one is reported: a client
			// that saw step i knows step i+1 is under way.
			tick, timer = j.after(j.step)
		}
		c.SendJSON(stepReport{Step: i, Of: n, Percent: i * 100 / n})
	}
	return n, nil
}

// after returns a channel closed when d has passed on the clock.
func (j *jobs) after(d time.Duration) (<-chan struct{}, realtime.Timer) {
	ch := make(chan struct{})
	return ch, j.clock.AfterFunc(d, func() { close(ch) })
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) realtime.Timer {
	return time.AfterFunc(d, f)
}
