package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// nodeSubject is the subject node's relay answers on.
func (b *Broker) nodeSubject(node string) string { return b.o.Prefix + ".node." + token(node) }

// ServeNode answers the requests addressed to node with h until ctx ends
// or the broker closes. It returns once the server has the subscription.
// Each request runs h on a goroutine of its own, with a context that ends
// with ctx, with Close, or when the requester's deadline passes.
func (b *Broker) ServeNode(ctx context.Context, node string, h func(ctx context.Context, req []byte) []byte) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return topics.ErrBrokerClosed
	}
	b.wg.Add(1) // the goroutine that ends the subscription
	b.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.ctx, cancel)
	sub, err := b.nc.Subscribe(b.nodeSubject(node), func(msg *nats.Msg) {
		if msg.Reply == "" || sctx.Err() != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			rctx, rcancel := sctx, context.CancelFunc(func() {})
			if ms, err := strconv.ParseInt(msg.Header.Get(timeoutHeader), 10, 64); err == nil {
				rctx, rcancel = context.WithTimeout(sctx, time.Duration(ms)*time.Millisecond)
			}
			defer rcancel()
			msg.Respond(h(rctx, msg.Data)) // the requester may be gone
		}()
	})
	if err == nil {
		fctx, fcancel := b.bound(ctx)
		err = b.nc.FlushWithContext(fctx)
		fcancel()
		if err != nil {
			sub.Unsubscribe()
		}
	}
	if err != nil {
		stop()
		cancel()
		b.wg.Done()
		return fmt.Errorf("natsbroker: serving node %q: %w", node, err)
	}
	go func() {
		defer b.wg.Done()
		<-sctx.Done()
		stop()
		sub.Unsubscribe()
	}()
	return nil
}

// Request sends req to node and returns its answer; realtime.ErrUnknownNode
// when no broker serves node (NATS reports no responders at once).
func (b *Broker) Request(ctx context.Context, node string, req []byte) ([]byte, error) {
	if b.isClosed() {
		return nil, topics.ErrBrokerClosed
	}
	msg := nats.NewMsg(b.nodeSubject(node))
	msg.Data = req
	if d, ok := ctx.Deadline(); ok {
		msg.Header.Set(timeoutHeader, strconv.FormatInt(time.Until(d).Milliseconds(), 10))
	}
	resp, err := b.nc.RequestMsgWithContext(ctx, msg)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, realtime.ErrUnknownNode
	}
	if err != nil {
		return nil, fmt.Errorf("natsbroker: request to node %q: %w", node, err)
	}
	return resp.Data, nil
}
