package topics

import (
	"cmp"
	"context"
	"errors"
	"slices"
)

// TopicStats describes one topic that has subscribers on this node, for
// inspection tools.
type TopicStats struct {
	// Name is the topic's name.
	Name string
	// Subscribers is the number of this node's connections subscribed to
	// it (catching up or live).
	Subscribers int
	// History is the number of messages the broker keeps for it, and
	// Last its latest sequence number (0 for none yet).
	History int
	Last    uint64
}

// Stats lists the topics with subscribers on this node, the most
// subscribed first (by name among equals), at most limit of them (limit
// <= 0: all), with their history as the broker reports it: one History
// call per topic listed, bounded by ctx. A topic whose history the broker
// could not give is listed with History and Last zero, and the error of
// those calls is returned, joined, beside the list.
func (ts *Topics) Stats(ctx context.Context, limit int) ([]TopicStats, error) {
	ts.mu.Lock()
	topics := make([]*topic, 0, len(ts.topics))
	for _, t := range ts.topics {
		topics = append(topics, t)
	}
	ts.mu.Unlock()
	out := make([]TopicStats, 0, len(topics))
	for _, t := range topics {
		t.mu.Lock()
		n, retired := len(t.subs), t.retired
		t.mu.Unlock()
		if n > 0 && !retired {
			out = append(out, TopicStats{Name: t.name, Subscribers: n})
		}
	}
	slices.SortFunc(out, func(a, b TopicStats) int {
		return cmp.Or(cmp.Compare(b.Subscribers, a.Subscribers), cmp.Compare(a.Name, b.Name))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	var errs []error
	for i := range out {
		// The oldest kept entry and the latest seq: seqs grow by one per
		// message, so what lies between is what is kept.
		h, err := ts.b.History(ctx, out[i].Name, 0, 1)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i].Last = h.Last
		if len(h.Entries) > 0 && h.Last >= h.Entries[0].Seq {
			out[i].History = int(h.Last - h.Entries[0].Seq + 1)
		}
	}
	return out, errors.Join(errs...)
}
