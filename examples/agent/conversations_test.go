package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime/topics"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// wait bounds every wait of these tests; nothing takes nearly as long
// unless it is broken.
const wait = 20 * time.Second

// registry is a conversations registry over an in-memory broker with a
// fake clock for the grace period and a model that answers at once, which
// holdAt can stop before a given token.
type registry struct {
	t      *testing.T
	cs     *conversations
	model  *model
	broker *topics.MemoryBroker
	clock  *realtimetest.Clock
	ended  chan runReport
	held   chan int      // the token index the model waits before
	free   chan struct{} // closing it lets held answers go on
}

const grace = 3 * time.Second

func newRegistry(t *testing.T, holdAt int) *registry {
	t.Helper()
	r := &registry{
		t:      t,
		broker: topics.NewMemoryBroker(&topics.MemoryOptions{History: history}),
		clock:  realtimetest.NewClock(time.Now()),
		ended:  make(chan runReport, 16),
		held:   make(chan int, 16),
		free:   make(chan struct{}),
	}
	r.model = &model{hold: func(ctx context.Context, i int) error {
		if i != holdAt {
			return nil
		}
		r.held <- i
		select {
		case <-r.free:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}}
	r.cs = newConversations(topics.New(r.broker), r.model, grace)
	r.cs.clock = r.clock
	r.cs.log = slog.New(slog.DiscardHandler)
	r.cs.ended = func(rep runReport) { r.ended <- rep }
	t.Cleanup(func() {
		r.cs.close()
		r.broker.Close()
	})
	return r
}

// report waits for the next run to end.
func (r *registry) report() runReport {
	r.t.Helper()
	select {
	case rep := <-r.ended:
		return rep
	case <-time.After(wait):
		r.t.Fatal("no run ended")
		return runReport{}
	}
}

// waitHeld waits until the model holds an answer.
func (r *registry) waitHeld() {
	r.t.Helper()
	select {
	case <-r.held:
	case <-time.After(wait):
		r.t.Fatal("the model did not reach the held token")
	}
}

// events returns the conversation's topic history.
func (r *registry) events(conv string) []event {
	r.t.Helper()
	h, err := r.broker.History(context.Background(), topicOf(conv), 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var evs []event
	for _, e := range h.Entries {
		var ev event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			r.t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// checkRun checks that evs is one run: start with prompt, the first tokens
// of the model's answer, then end with reason.
func checkRun(t *testing.T, evs []event, prompt string, tokens int, reason string) {
	t.Helper()
	want := answer(prompt)[:tokens]
	if len(evs) != tokens+2 || evs[0] != (event{Type: "start", Prompt: prompt}) || evs[len(evs)-1] != (event{Type: "end", Reason: reason}) {
		t.Fatalf("events %+v, want start %q, %d tokens, end %s", evs, prompt, tokens, reason)
	}
	for i, ev := range evs[1 : len(evs)-1] {
		if ev != (event{Type: "token", Text: want[i]}) {
			t.Fatalf("event %d is %+v, want token %q", i+1, ev, want[i])
		}
	}
}

func TestAnswerTokens(t *testing.T) {
	for _, prompt := range []string{"", "why?", strings.Repeat("word ", 500)} {
		tokens := answer(prompt)
		if n := len(tokens); n < 40 || n > 200 {
			t.Errorf("%d tokens for a prompt of %d words", n, len(strings.Fields(prompt)))
		}
		if got := strings.Join(answer(prompt), ""); got != strings.Join(tokens, "") {
			t.Errorf("the answer is not deterministic")
		}
	}
	if got := strings.Join(answer("why is  the sky\nblue"), ""); !strings.HasSuffix(got, "in order: why is the sky blue — that is all.") {
		t.Errorf("answer %q", got)
	}
}

// An answer nobody stops runs to its end: start, every token, end done.
func TestRunDone(t *testing.T) {
	r := newRegistry(t, -1)
	conv := newConvID()
	defer r.cs.watch(conv)()
	if err := r.cs.ask(conv, "hello there"); err != nil {
		t.Fatal(err)
	}
	rep := r.report()
	n := len(answer("hello there"))
	if rep.Reason != reasonDone || rep.Tokens != n || rep.Cause != nil {
		t.Fatalf("report %+v", rep)
	}
	checkRun(t, r.events(conv), "hello there", n, reasonDone)
}

// Stop cancels the run's context at once: the model returns without
// another token and the end event says stopped.
func TestRunStop(t *testing.T) {
	r := newRegistry(t, 3)
	conv := newConvID()
	defer r.cs.watch(conv)()
	if r.cs.stop(conv) {
		t.Fatal("stop with no run reported a run")
	}
	if err := r.cs.ask(conv, "stop me"); err != nil {
		t.Fatal(err)
	}
	r.waitHeld()
	if !r.cs.stop(conv) {
		t.Fatal("stop found no run")
	}
	rep := r.report()
	t.Logf("stop latency (Stop received to model returned): %v", rep.StopLatency)
	if rep.Reason != reasonStopped || !errors.Is(rep.Cause, errStopped) || rep.Tokens != 3 || rep.StopLatency <= 0 {
		t.Fatalf("report %+v", rep)
	}
	checkRun(t, r.events(conv), "stop me", 3, reasonStopped)
	if r.cs.stop(conv) {
		t.Fatal("a second stop reported a run")
	}
}

// A conversation runs one answer at a time; the next one may start once the
// first has ended, and its events follow the first one's end.
func TestRunOneAtATime(t *testing.T) {
	r := newRegistry(t, 2)
	conv, other := newConvID(), newConvID()
	defer r.cs.watch(conv)()
	defer r.cs.watch(other)()
	if err := r.cs.ask(conv, "first"); err != nil {
		t.Fatal(err)
	}
	r.waitHeld()
	if err := r.cs.ask(conv, "second"); !errors.Is(err, errBusy) {
		t.Fatalf("second ask: %v, want errBusy", err)
	}
	if err := r.cs.ask(other, "elsewhere"); err != nil { // another conversation is not busy
		t.Fatalf("ask in another conversation: %v", err)
	}
	r.waitHeld()
	close(r.free)
	r.report()
	r.report()
	if err := r.cs.ask(conv, "second"); err != nil {
		t.Fatalf("ask after the first ended: %v", err)
	}
	if rep := r.report(); rep.Prompt != "second" || rep.Reason != reasonDone {
		t.Fatalf("report %+v", rep)
	}
	evs := r.events(conv)
	n := len(answer("first"))
	checkRun(t, evs[:n+2], "first", n, reasonDone)
	checkRun(t, evs[n+2:], "second", len(answer("second")), reasonDone)
}

// A run goes on while someone watches; once nobody has for the grace
// period, it is abandoned. A viewer back within the grace keeps it.
func TestRunAbandoned(t *testing.T) {
	r := newRegistry(t, 4)
	conv := newConvID()
	unwatch := r.cs.watch(conv)
	if err := r.cs.ask(conv, "anyone there?"); err != nil {
		t.Fatal(err)
	}
	r.waitHeld()

	// A reload: the old connection goes, a new one comes within the grace.
	unwatch()
	unwatch() // only the first call counts
	r.clock.Advance(grace - time.Millisecond)
	unwatch = r.cs.watch(conv)
	r.clock.Advance(time.Hour)
	select {
	case rep := <-r.ended:
		t.Fatalf("a watched run ended: %+v", rep)
	default:
	}

	// The tab closes: nobody comes back.
	unwatch()
	r.clock.Advance(grace)
	rep := r.report()
	if rep.Reason != reasonAbandoned || !errors.Is(rep.Cause, errAbandoned) || rep.Tokens != 4 {
		t.Fatalf("report %+v", rep)
	}
	checkRun(t, r.events(conv), "anyone there?", 4, reasonAbandoned)
	if n := r.clock.Pending(); n != 0 {
		t.Errorf("%d timers left", n)
	}
	r.cs.mu.Lock()
	defer r.cs.mu.Unlock()
	if n := len(r.cs.convs); n != 0 {
		t.Errorf("%d conversations kept with no viewer and no run", n)
	}
}

// An answer asked for with nobody watching (the asker's connection went at
// once) is abandoned after the grace period too.
func TestRunAskedUnwatched(t *testing.T) {
	r := newRegistry(t, 1)
	conv := newConvID()
	if err := r.cs.ask(conv, "fire and forget"); err != nil {
		t.Fatal(err)
	}
	r.waitHeld()
	r.clock.Advance(grace)
	if rep := r.report(); rep.Reason != reasonAbandoned {
		t.Fatalf("report %+v", rep)
	}
}

// Shutting the registry down stops every run and waits for it; no run
// starts afterwards.
func TestRunShutdown(t *testing.T) {
	r := newRegistry(t, 2)
	convs := []string{newConvID(), newConvID()}
	for _, conv := range convs {
		defer r.cs.watch(conv)()
		if err := r.cs.ask(conv, "long"); err != nil {
			t.Fatal(err)
		}
		r.waitHeld()
	}
	r.cs.close() // returns once both run goroutines have
	for range convs {
		if rep := r.report(); rep.Reason != reasonStopped || !errors.Is(rep.Cause, errShutdown) {
			t.Fatalf("report %+v", rep)
		}
	}
	for _, conv := range convs {
		checkRun(t, r.events(conv), "long", 2, reasonStopped)
	}
	if err := r.cs.ask(convs[0], "again"); !errors.Is(err, errShutdown) {
		t.Fatalf("ask after close: %v", err)
	}
}
