package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// replyTimeout bounds publishing an answer or a cancellation.
const replyTimeout = 5 * time.Second

// relayRequest is what Request publishes on <prefix>:node:<node>: a
// request, or (Cancel) word that its requester gave up.
type relayRequest struct {
	To       string `json:"to"` // the requester's reply channel
	ID       uint64 `json:"id"` // the request's number on it
	Body     []byte `json:"body,omitempty"`
	Deadline int64  `json:"deadline,omitempty"` // unix ms; 0: none
	Cancel   bool   `json:"cancel,omitempty"`
}

func (b *Broker) nodeChannel(node string) string { return b.prefix + ":node:" + node }

// ServeNode answers the requests addressed to node with h until ctx ends
// or the broker closes. It returns once its subscription to
// <prefix>:node:<node> is confirmed. Each request runs h on a goroutine of
// its own, whose context ends with ctx, at the requester's deadline, or
// when the requester gives up. Two brokers serving one node both answer;
// the requester takes the first answer.
func (b *Broker) ServeNode(ctx context.Context, node string, h func(ctx context.Context, req []byte) []byte) error {
	sctx, stop := context.WithCancel(ctx)
	var (
		mu      sync.Mutex
		running = map[string]context.CancelFunc{}
	)
	onMessage := func(payload string) {
		var r relayRequest
		if err := json.Unmarshal([]byte(payload), &r); err != nil || r.To == "" {
			b.logger.Warn("redisbroker: malformed relay request", "node", node, "err", err)
			return
		}
		key := r.To + " " + strconv.FormatUint(r.ID, 10)
		mu.Lock()
		defer mu.Unlock()
		if r.Cancel {
			if cancel := running[key]; cancel != nil {
				cancel()
			}
			return
		}
		var (
			hctx   context.Context
			cancel context.CancelFunc
		)
		if r.Deadline > 0 {
			hctx, cancel = context.WithDeadline(sctx, time.UnixMilli(r.Deadline))
		} else {
			hctx, cancel = context.WithCancel(sctx)
		}
		running[key] = cancel
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			answer := h(hctx, r.Body)
			mu.Lock()
			delete(running, key)
			mu.Unlock()
			cancel()
			pctx, pcancel := context.WithTimeout(context.Background(), replyTimeout)
			defer pcancel()
			reply := append(strconv.AppendUint(nil, r.ID, 10), ' ')
			if err := b.c.Publish(pctx, r.To, append(reply, answer...)).Err(); err != nil {
				b.logger.Warn("redisbroker: relay answer lost", "node", node, "err", err)
			}
		}()
	}
	l, err := b.listen(ctx, b.nodeChannel(node), onMessage, nil)
	if err != nil {
		stop()
		return err
	}
	l.onClose = stop // ends the running handlers' contexts
	context.AfterFunc(ctx, l.close)
	l.start()
	return nil
}

// inbox is the broker's reply channel, <prefix>:reply:<random>, on which
// the answers to all its requests arrive, numbered; one subscription
// serves every Request.
type inbox struct {
	channel string
	l       *listener

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []byte
}

func (in *inbox) onMessage(payload string) {
	s, body, ok := strings.Cut(payload, " ")
	id, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		return
	}
	in.mu.Lock()
	ch := in.waiting[id]
	delete(in.waiting, id)
	in.mu.Unlock()
	if ch != nil {
		ch <- []byte(body) // buffered
	}
}

func (in *inbox) register() (uint64, chan []byte) {
	ch := make(chan []byte, 1)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.next++
	in.waiting[in.next] = ch
	return in.next, ch
}

func (in *inbox) unregister(id uint64) {
	in.mu.Lock()
	delete(in.waiting, id)
	in.mu.Unlock()
}

// getInbox subscribes the broker's reply channel on first use.
func (b *Broker) getInbox(ctx context.Context) (*inbox, error) {
	b.inboxMu.Lock()
	defer b.inboxMu.Unlock()
	if b.inbox != nil {
		return b.inbox, nil
	}
	var r [12]byte
	rand.Read(r[:])
	in := &inbox{channel: b.prefix + ":reply:" + hex.EncodeToString(r[:]), waiting: map[uint64]chan []byte{}}
	l, err := b.listen(ctx, in.channel, in.onMessage, nil)
	if err != nil {
		return nil, err
	}
	in.l = l
	l.start()
	b.inbox = in
	return in, nil
}

// Request sends req to node and returns its answer. The broker's reply
// channel is subscribed before the request is published, so no answer is
// missed; when nobody is subscribed to the node's channel (PUBLISH reached
// no receiver) it returns realtime.ErrUnknownNode at once (not on Redis
// Cluster, see the package doc). When ctx ends first, it tells the node,
// whose handler's context then ends too, and returns ctx's error.
func (b *Broker) Request(ctx context.Context, node string, req []byte) ([]byte, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	in, err := b.getInbox(ctx)
	if err != nil {
		return nil, err
	}
	id, ch := in.register()
	defer in.unregister(id)
	r := relayRequest{To: in.channel, ID: id, Body: req}
	if dl, ok := ctx.Deadline(); ok {
		r.Deadline = dl.UnixMilli()
	}
	env, _ := json.Marshal(r)
	n, err := b.c.Publish(ctx, b.nodeChannel(node), env).Result()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: request to node %q: %w", node, err)
	}
	if n == 0 && !b.cluster {
		return nil, realtime.ErrUnknownNode
	}
	select {
	case answer := <-ch:
		return answer, nil
	case <-b.done:
		return nil, topics.ErrBrokerClosed
	case <-ctx.Done():
		r.Body, r.Cancel = nil, true
		env, _ := json.Marshal(r)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
		defer cancel()
		b.c.Publish(cctx, b.nodeChannel(node), env) // best effort
		return nil, ctx.Err()
	}
}
