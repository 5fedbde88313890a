package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime/topics"
)

// resyncTimeout bounds the history read a subscription makes after
// reconnecting.
const resyncTimeout = 10 * time.Second

// listener owns one pub/sub connection subscribed to one channel and the
// goroutine that reads it: it hands messages to onMessage, calls
// onResubscribe after go-redis reconnected and subscribed again, pings a
// silent connection and backs off while Redis is unreachable.
type listener struct {
	b             *Broker
	ps            *redis.PubSub
	onMessage     func(payload string)
	onResubscribe func()
	onClose       func() // run once the goroutine has stopped

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	startOnce sync.Once
}

// listen subscribes to channel and waits until Redis confirmed it. The
// caller starts the listener.
func (b *Broker) listen(ctx context.Context, channel string, onMessage func(string), onResubscribe func()) (*listener, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, topics.ErrBrokerClosed
	}
	ps := b.c.Subscribe(ctx, channel)
	if err := confirm(ctx, ps); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redisbroker: subscribe to %s: %w", channel, err)
	}
	l := &listener{
		b: b, ps: ps, onMessage: onMessage, onResubscribe: onResubscribe,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ps.Close()
		return nil, topics.ErrBrokerClosed
	}
	b.listeners[l] = struct{}{}
	b.mu.Unlock()
	return l, nil
}

// start starts the listener's goroutine.
func (l *listener) start() { l.startOnce.Do(func() { go l.run() }) }

// confirm waits for the subscription's confirmation.
func confirm(ctx context.Context, ps *redis.PubSub) error {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		if _, ok := msg.(*redis.Subscription); ok {
			return nil
		}
	}
}

func (l *listener) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *listener) run() {
	defer close(l.done)
	bg := context.Background()
	pinged := false // a ping is out: the next read must see something
	failures := 0
	for {
		var (
			msg any
			err error
		)
		if pinged {
			// A read with a context deadline: its timeout counts as a
			// broken connection, so go-redis reconnects.
			ctx, cancel := context.WithTimeout(bg, l.b.ping)
			msg, err = l.ps.Receive(ctx)
			cancel()
		} else {
			msg, err = l.ps.ReceiveTimeout(bg, l.b.ping)
		}
		if l.stopped() {
			return
		}
		if err != nil {
			_, _, dialing := dialFailure(err)
			if !pinged && !dialing && isTimeout(err) {
				if err = l.ps.Ping(bg); err == nil {
					pinged = true
					continue
				}
			}
			pinged = false
			failures++
			if failures == 1 || failures%50 == 0 {
				l.b.logger.Warn("redisbroker: subscription lost; reconnecting", "channel", l.ps.String(), "err", err)
			}
			if !l.backoff(failures, err) {
				return
			}
			continue
		}
		failures, pinged = 0, false
		switch m := msg.(type) {
		case *redis.Message:
			l.onMessage(m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" && l.onResubscribe != nil {
				l.onResubscribe()
			}
		}
	}
}

// backoff waits before the next attempt after n failures in a row, the
// last of which was err; it reports false if the listener stopped
// meanwhile. When err is a refused dial, the wait also ends as soon as
// the address accepts connections again: waiting out a long backoff
// after Redis is back would leave what is published meanwhile to the
// history alone, which a busy topic rolls over in a second.
func (l *listener) backoff(n int, err error) bool {
	d := 10 * time.Millisecond << min(n-1, 7) // up to 1.28s
	t := time.NewTimer(d)
	defer t.Stop()
	var up <-chan struct{} // nil: only the timer
	if network, addr, ok := dialFailure(err); ok {
		up = l.b.reachable(network, addr)
	}
	select {
	case <-t.C:
		return true
	case <-up:
		return true
	case <-l.stop:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// close stops the listener and waits for its goroutine.
func (l *listener) close() {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.ps.Close()                             // interrupts a blocked read
		l.startOnce.Do(func() { close(l.done) }) // never started
		<-l.done
		l.b.mu.Lock()
		delete(l.b.listeners, l)
		l.b.mu.Unlock()
		if l.onClose != nil {
			l.onClose()
		}
	})
	<-l.done
}

// subscription delivers a topic's live messages in order, exactly once,
// filling from the history what it missed while reconnecting.
type subscription struct {
	b       *Broker
	topic   string
	deliver func(topics.Entry)
	l       *listener
	last    uint64 // the newest seq delivered or known; loop goroutine only
}

// Subscribe delivers topic's messages published from the time it returns,
// in order, one at a time, from one goroutine that the subscription owns.
// When its connection breaks, the subscription reconnects and first
// delivers from the history what was published meanwhile (a hole, if the
// history no longer has it, which topics.Topics reports as a gap).
func (b *Broker) Subscribe(ctx context.Context, topic string, deliver func(topics.Entry)) (topics.Subscription, error) {
	s := &subscription{b: b, topic: topic, deliver: deliver}
	l, err := b.listen(ctx, b.key(topic, "live"), s.onMessage, s.resync)
	if err != nil {
		return nil, err
	}
	// Where the topic stands now: the start for resyncs. Messages
	// published since the subscription was confirmed and up to here are
	// published before Subscribe returns, and are skipped.
	// Subscribing counts as use: the topic's keys live on (see Ageing).
	var get *redis.StringCmd
	_, err = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, b.key(topic, "seq"))
		if ms := b.retentionMillis(); ms > 0 {
			p.PExpire(ctx, b.key(topic, "seq"), time.Duration(ms)*time.Millisecond)
			p.PExpire(ctx, b.key(topic, "h"), time.Duration(ms)*time.Millisecond)
		}
		return nil
	})
	last, gerr := get.Uint64()
	if err == nil || errors.Is(err, redis.Nil) {
		err = gerr
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		l.close()
		return nil, fmt.Errorf("redisbroker: subscribe to %q: %w", topic, err)
	}
	s.last = last
	s.l = l
	l.start()
	return s, nil
}

// onMessage delivers a live message unless it was delivered already.
func (s *subscription) onMessage(payload string) {
	e, err := decodeLive(payload)
	if err != nil {
		s.b.logger.Warn("redisbroker: dropped message", "topic", s.topic, "err", err)
		return
	}
	if e.Seq <= s.last {
		return // delivered by a resync, or published before Subscribe returned
	}
	s.last = e.Seq
	s.deliver(e)
}

// resync delivers from the history what was published while the
// connection was down, after go-redis subscribed again: live messages that
// follow are then deduplicated by seq.
func (s *subscription) resync() {
	ctx, cancel := context.WithTimeout(context.Background(), resyncTimeout)
	defer cancel()
	h, err := s.b.History(ctx, s.topic, s.last, 0)
	if err != nil {
		// The next live message shows the hole; topics.Topics fills it.
		s.b.logger.Warn("redisbroker: resync after reconnect failed", "topic", s.topic, "err", err)
		return
	}
	if h.Last < s.last {
		// The topic restarted (its keys were lost): take its numbering.
		s.last = h.Last
		return
	}
	for _, e := range h.Entries {
		if e.Seq > s.last {
			s.last = e.Seq
			s.deliver(e)
		}
	}
}

// Close ends the subscription and waits for its goroutine: deliver is not
// called once it returns.
func (s *subscription) Close() error {
	s.l.close()
	return nil
}
