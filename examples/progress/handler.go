package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rtkit/rtkit/realtime"
)

// request is what the page sends: start a job of N steps, or follow job id
// from after the first after steps (0 replays them all, as after a
// reload).
//
//	{"start": 50}
//	{"resume": "<job id>", "after": 12}
type request struct {
	Start  int    `json:"start,omitempty"`
	Resume string `json:"resume,omitempty"`
	After  int    `json:"after,omitempty"`
}

// What the page receives. After a start or a resume, the connection
// follows the job: a followReply, the job's steps after the ones the page
// has, then its end.
//
//	{"job": "<id>", "of": 50}
//	{"step": 13, "of": 50, "percent": 26}        once per step
//	{"done": true, "steps": 50}                  or
//	{"stopped": "server shutting down", "steps": 20}
//
// A resume of a job the server no longer keeps is answered with a
// goneReply, a request it refuses with an errorReply; the connection stays
// open.
type (
	followReply struct {
		Job string `json:"job"`
		Of  int    `json:"of"`
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
	stoppedReport struct {
		Stopped string `json:"stopped"`
		Steps   int    `json:"steps"`
	}
	goneReply struct {
		Gone string `json:"gone"`
	}
	errorReply struct {
		Error string `json:"error"`
	}
)

const usage = `send {"start": N} or {"resume": "<job id>", "after": K}`

// following is a connection's watch of one job.
type following struct {
	job     *job
	unwatch func()
	stop    context.CancelFunc // ends the follower
	done    chan struct{}      // closed when the follower has returned
}

// handler returns the handler of the jobs route. A connection follows one
// job at a time, the one it started or resumed last: a goroutine of the
// connection's (Conn.Go) walks the job's step log and sends each step once,
// waiting for room in the send queue when the client reads slowly (the
// route's Overflow is OverflowBlock), so a replay of a whole job never
// overflows the queue and the job never waits. When the connection closes
// it stops watching the job, which the registry cancels once nobody has
// watched it for the grace period.
func (js *jobs) handler() realtime.Handler {
	return realtime.PerConn(func(c *realtime.Conn) realtime.Handler {
		var cur *following // touched only by the callbacks, which never overlap
		// follow makes the connection follow j from after, in place of the
		// job it followed before, and sends the followReply: replies go
		// out in the order of the requests. It waits for the previous
		// follower to return, which it does before its next send (at most
		// WriteTimeout, for a client that reads nothing).
		follow := func(j *job, unwatch func(), after int) error {
			if prev := cur; prev != nil {
				prev.stop()
				select {
				case <-prev.done: // its last message comes before the reply
				case <-c.Context().Done(): // closing: nothing more is sent (and Go may not have run it)
				}
				prev.unwatch() // after j's watch began: a job followed again is kept
			}
			ctx, stop := context.WithCancel(c.Context())
			f := &following{job: j, unwatch: unwatch, stop: stop, done: make(chan struct{})}
			cur = f
			if err := c.SendJSON(followReply{Job: j.id, Of: j.of}); err != nil {
				close(f.done)
				return nil // closing; Close unwatches j
			}
			c.Go(func(context.Context) error {
				defer close(f.done)
				defer stop()
				err := sendSteps(ctx, c, j, after)
				if errors.Is(err, realtime.ErrClosed) || ctx.Err() != nil {
					return nil // the connection is closing, or follows another job
				}
				return err // the client read nothing for WriteTimeout: close
			})
			return nil
		}
		return realtime.Funcs{
			OnMessage: func(c *realtime.Conn, m realtime.Message) error {
				var req request
				if err := m.Decode(&req); err != nil || (req.Start == 0) == (req.Resume == "") {
					return c.SendJSON(errorReply{Error: usage})
				}
				if req.Start != 0 {
					if req.Start < 1 || req.Start > maxSteps {
						return c.SendJSON(errorReply{Error: fmt.Sprintf("start: 1 to %d steps", maxSteps)})
					}
					if cur != nil && cur.job.running() {
						return c.SendJSON(errorReply{Error: "a job is already running"})
					}
					j, unwatch, err := js.start(req.Start)
					if err != nil {
						return c.SendJSON(errorReply{Error: "the server is shutting down"})
					}
					return follow(j, unwatch, 0)
				}
				if !validJobID(req.Resume) {
					return c.SendJSON(errorReply{Error: "bad job id"})
				}
				j, unwatch, err := js.watch(req.Resume)
				switch {
				case errors.Is(err, errUnknownJob):
					return c.SendJSON(goneReply{Gone: req.Resume})
				case err != nil:
					return c.SendJSON(errorReply{Error: "the server is shutting down"})
				case req.After < 0 || req.After > j.of:
					unwatch()
					return c.SendJSON(errorReply{Error: fmt.Sprintf("after: 0 to %d steps", j.of)})
				}
				return follow(j, unwatch, req.After)
			},
			OnClose: func(c *realtime.Conn, err error) {
				if cur != nil {
					cur.unwatch() // its follower has returned: Close runs after Go's goroutines
				}
			},
		}
	})
}

// sendSteps sends c the steps of j after the first after, then its end.
func sendSteps(ctx context.Context, c *realtime.Conn, j *job, after int) error {
	return j.follow(ctx, after,
		func(s stepReport) error { return c.SendJSON(s) },
		func(steps int, cause error) error {
			switch {
			case cause == nil:
				return c.SendJSON(doneReport{Done: true, Steps: steps})
			case errors.Is(cause, errShutdown):
				return c.SendJSON(stoppedReport{Stopped: "server shutting down", Steps: steps})
			default:
				return c.SendJSON(stoppedReport{Stopped: "nobody watched it", Steps: steps})
			}
		})
}
