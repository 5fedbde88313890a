package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// event is what a run publishes on its conversation's topic, one JSON
// object per message, in this order:
//
//	{"type":"start","prompt":"..."}
//	{"type":"token","text":" word"}       once per token
//	{"type":"end","reason":"done"}        or "stopped", "abandoned"
type event struct {
	Type   string `json:"type"`
	Prompt string `json:"prompt,omitempty"`
	Text   string `json:"text,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Why a run ended, as its end event says.
const (
	reasonDone      = "done"      // the model finished its answer
	reasonStopped   = "stopped"   // a viewer pressed Stop, or the server shut down
	reasonAbandoned = "abandoned" // nobody watched the conversation for the grace period
)

var (
	errBusy = errors.New("an answer is already running in this conversation: stop it first")
	// The causes a run's context is cancelled with.
	errStopped   = errors.New("agent: stopped")
	errAbandoned = errors.New("agent: abandoned: nobody watching")
	errShutdown  = errors.New("agent: server shutting down")
)

// publishTimeout bounds one publish on the conversation's topic.
const publishTimeout = 5 * time.Second

// conversations owns the answer runs of every conversation. A run belongs
// to its conversation, not to the connection that asked for it: it goes on
// while at least one connection watches the conversation, through reloads
// and reconnects, and it ends when the model is done, when a viewer stops
// it, when nobody has watched for the grace period, or when the server
// shuts down (close). Each run is one goroutine of the registry's, which
// close waits for.
//
// A conversation runs one answer at a time; the next one's start event
// follows the previous one's end event.
type conversations struct {
	topics *topics.Topics
	model  *model
	grace  time.Duration
	clock  realtime.Clock // times the grace period; tests set a fake one
	log    *slog.Logger
	// ended, when set, is called after each run has ended and published
	// its end event (tests watch it).
	ended func(runReport)

	ctx    context.Context // the registry's lifetime; close cancels it
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // the run goroutines

	mu     sync.Mutex
	convs  map[string]*conversation // those with a viewer or a run
	closed bool
}

// conversation is what the registry knows of one conversation while
// someone watches it or an answer runs.
type conversation struct {
	viewers int
	run     *answerRun     // the latest run, until its end event is published
	idle    realtime.Timer // armed while a running answer has no viewer
}

// answerRun is one answer in flight.
type answerRun struct {
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed once the end event is published
	returned bool          // the model has returned: Stop has nothing left to stop
	stopAt   time.Time     // when a Stop arrived
}

// runReport says how a run ended.
type runReport struct {
	Prompt string
	Reason string // reasonDone, reasonStopped or reasonAbandoned
	Tokens int    // tokens published
	// Cause is why the run's context was cancelled (errStopped,
	// errAbandoned, errShutdown), or nil when the model finished first.
	Cause error
	// StopLatency is the time from the Stop arriving to the model having
	// returned, for a run a Stop ended.
	StopLatency time.Duration
}

// newConversations returns a registry that publishes on ts, answers with
// m and abandons a run nobody watched for grace.
func newConversations(ts *topics.Topics, m *model, grace time.Duration) *conversations {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conversations{
		topics: ts,
		model:  m,
		grace:  grace,
		clock:  wallClock{},
		log:    slog.Default(),
		ctx:    ctx,
		cancel: cancel,
		convs:  make(map[string]*conversation),
	}
}

func topicOf(conv string) string { return "conv:" + conv }

// watch counts one more viewer of conversation id until unwatch is called
// (once; later calls do nothing). A viewer that comes back within the grace
// period keeps the conversation's answer running.
func (cs *conversations) watch(id string) (unwatch func()) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cv := cs.conversation(id)
	cv.viewers++
	if cv.idle != nil {
		cv.idle.Stop()
		cv.idle = nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			cv.viewers--
			cs.settle(id, cv)
		})
	}
}

// ask starts an answer to prompt in conversation id and returns without
// waiting for it; errBusy when one is already running.
func (cs *conversations) ask(id, prompt string) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return errShutdown
	}
	cv := cs.conversation(id)
	prev := cv.run
	if prev != nil && !prev.returned {
		return errBusy
	}
	ctx, cancel := context.WithCancelCause(cs.ctx)
	r := &answerRun{cancel: cancel, done: make(chan struct{})}
	cv.run = r
	cs.settle(id, cv) // nobody watching yet: the grace period starts now
	cs.wg.Add(1)
	go cs.execute(ctx, id, cv, r, prev, prompt)
	return nil
}

// stop cancels the answer running in conversation id at once and reports
// whether there was one.
func (cs *conversations) stop(id string) bool {
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cv := cs.convs[id]
	if cv == nil || cv.run == nil || cv.run.returned {
		return false
	}
	if cv.run.stopAt.IsZero() {
		cv.run.stopAt = now
	}
	cv.run.cancel(errStopped)
	return true
}

// close stops every run and waits for their goroutines; the registry
// starts no run afterwards.
func (cs *conversations) close() {
	cs.mu.Lock()
	cs.closed = true
	for _, cv := range cs.convs {
		if cv.idle != nil {
			cv.idle.Stop()
			cv.idle = nil
		}
	}
	cs.mu.Unlock()
	cs.cancel(errShutdown)
	cs.wg.Wait()
}

// conversation returns the entry of id, making it. Called with mu held.
func (cs *conversations) conversation(id string) *conversation {
	cv := cs.convs[id]
	if cv == nil {
		cv = &conversation{}
		cs.convs[id] = cv
	}
	return cv
}

// settle is called with mu held whenever a conversation loses a viewer or
// a run: a running answer nobody watches is abandoned after the grace
// period, and a conversation with neither viewer nor run is forgotten (its
// topic keeps the history).
func (cs *conversations) settle(id string, cv *conversation) {
	if cv.viewers > 0 {
		return
	}
	if cv.run == nil {
		if cv.idle != nil {
			cv.idle.Stop()
			cv.idle = nil
		}
		delete(cs.convs, id)
		return
	}
	if cv.idle != nil || cs.closed {
		return
	}
	var t realtime.Timer
	t = cs.clock.AfterFunc(cs.grace, func() {
		cs.mu.Lock() // t is set: it was assigned under this lock
		defer cs.mu.Unlock()
		if cv.idle != t { // a viewer came back, or the run ended
			return
		}
		cv.idle = nil
		cv.run.cancel(errAbandoned)
	})
	cv.idle = t
}

// execute is a run's goroutine: the start event, a token event per token
// while the model streams, then the end event.
func (cs *conversations) execute(ctx context.Context, id string, cv *conversation, r, prev *answerRun, prompt string) {
	defer cs.wg.Done()
	if prev != nil {
		<-prev.done // its end event comes before this start
	}
	topic := topicOf(id)
	cs.publish(topic, event{Type: "start", Prompt: prompt})
	tokens := 0
	err := cs.model.stream(ctx, prompt, func(tok string) {
		tokens++
		cs.publish(topic, event{Type: "token", Text: tok})
	})
	returned := time.Now()

	rep := runReport{Prompt: prompt, Reason: reasonDone, Tokens: tokens}
	cs.mu.Lock()
	r.returned = true
	if err != nil {
		rep.Cause = err
		rep.Reason = reasonStopped
		if errors.Is(err, errAbandoned) {
			rep.Reason = reasonAbandoned
		}
		if !r.stopAt.IsZero() {
			rep.StopLatency = returned.Sub(r.stopAt)
		}
	}
	cs.mu.Unlock()

	cs.publish(topic, event{Type: "end", Reason: rep.Reason})
	cs.mu.Lock()
	if cv.run == r {
		cv.run = nil
		cs.settle(id, cv)
	}
	cs.mu.Unlock()
	r.cancel(nil)
	close(r.done)

	attrs := []any{"reason", rep.Reason, "tokens", rep.Tokens}
	if rep.StopLatency > 0 {
		attrs = append(attrs, "stop_latency", rep.StopLatency)
	}
	cs.log.Info("agent: answer ended", attrs...)
	if cs.ended != nil {
		cs.ended(rep)
	}
}

// publish sends e on topic. It outlives the registry's context, so that a
// run stopped by a shutdown still publishes its end.
func (cs *conversations) publish(topic string, e event) {
	b, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cs.ctx), publishTimeout)
	defer cancel()
	if _, err := cs.topics.Publish(ctx, topic, realtime.Text(string(b))); err != nil {
		cs.log.Warn("agent: publish failed", "event", e.Type, "err", err)
	}
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) realtime.Timer {
	return time.AfterFunc(d, f)
}
