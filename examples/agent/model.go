package main

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// model is a deterministic stand-in for an AI model behind a network call:
// it waits firstToken, as a model thinks, then streams a fixed answer one
// token every tokenDelay. The answer follows from the prompt alone (see
// answer), so tests know what the page must show.
type model struct {
	firstToken time.Duration
	tokenDelay time.Duration

	// started counts the answers begun (tests read it).
	started atomic.Int64
	// hold, when set, is called before token i is emitted; tests use it to
	// keep an answer in flight. It must return when ctx ends.
	hold func(ctx context.Context, i int) error
}

// intro is what the model says before the prompt's words.
const intro = "This is a stand-in model: it answers every prompt with this same paragraph, one word at a time, " +
	"after a pause that plays the part of a real model thinking. It understands nothing, but it listens: " +
	"here are your words again, in order:"

// maxEchoed bounds how many of the prompt's words the answer repeats, so
// that an answer has at most about 200 tokens.
const maxEchoed = 150

// answer returns the tokens of the model's answer to prompt: the intro,
// the prompt's words (at most maxEchoed) and a closing sentence, each word
// one token, with the space before it. Joined, they are the answer.
func answer(prompt string) []string {
	words := strings.Fields(intro)
	echoed := strings.Fields(prompt)
	if len(echoed) > maxEchoed {
		echoed = echoed[:maxEchoed]
	}
	words = append(words, echoed...)
	words = append(words, "—", "that", "is", "all.")
	tokens := make([]string, len(words))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		tokens[i] = w
	}
	return tokens
}

// stream calls emit with each token of the answer to prompt, in order, at
// the model's pace. It returns nil when the answer is complete, or the
// context's cause as soon as ctx ends: a cancelled call stops at once,
// without another token.
func (m *model) stream(ctx context.Context, prompt string, emit func(token string)) error {
	m.started.Add(1)
	wait := time.NewTimer(m.firstToken)
	defer wait.Stop()
	for i, tok := range answer(prompt) {
		if i > 0 {
			wait.Reset(m.tokenDelay)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-wait.C:
		}
		if m.hold != nil {
			if err := m.hold(ctx, i); err != nil {
				return err
			}
		}
		if ctx.Err() != nil { // cancelled as the wait ended: not one more token
			return context.Cause(ctx)
		}
		emit(tok)
	}
	return nil
}
