package realtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// A slowWatch is the timer that notices a callback outliving
// slowCallback. Connections take one from a shared pool for each callback
// and give it back after, so that an idle connection holds no timer.
//
// Invariant: a watch is in the pool only when its timer is stopped and
// will not fire; the one whose Stop came too late (the timer fired, or is
// firing, for the callback that just ended) is dropped instead. A late
// firing only makes its connection count the next callback as slow early
// (see onSlow), so the watch may point at the connection it served last.
type slowWatch struct {
	t *time.Timer
	c atomic.Pointer[Conn] // the connection whose callback it times
}

// slowWatches holds the stopped watches.
var slowWatches sync.Pool

func (w *slowWatch) fire() {
	if c := w.c.Load(); c != nil {
		c.onSlow()
	}
}

// watchSlow starts timing a callback of c.
func watchSlow(c *Conn) *slowWatch {
	w, _ := slowWatches.Get().(*slowWatch)
	if w == nil {
		w = &slowWatch{}
		w.c.Store(c)
		w.t = time.AfterFunc(slowCallback, w.fire)
		return w
	}
	w.c.Store(c)
	w.t.Reset(slowCallback)
	return w
}

// done stops timing; w must not be used after.
func (w *slowWatch) done() {
	if w.t.Stop() {
		w.c.Store(nil)
		slowWatches.Put(w)
	}
}
