package rtclient

import (
	"sync"
	"time"
)

// watchdog fails a transport when nothing was heard from the server for
// idle. Time spent waiting for the application to Receive does not count.
// A nil *watchdog (keepalive off) does nothing.
type watchdog struct {
	idle time.Duration
	fail func(error)

	mu      sync.Mutex
	last    time.Time
	paused  bool
	stopped bool
	timer   *time.Timer
}

func newWatchdog(idle time.Duration, fail func(error)) *watchdog {
	if idle <= 0 {
		return nil
	}
	w := &watchdog{idle: idle, fail: fail, last: time.Now()}
	w.timer = time.AfterFunc(idle, w.check)
	return w
}

// touch records that the server was heard.
func (w *watchdog) touch() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.last = time.Now()
	w.mu.Unlock()
}

func (w *watchdog) pause() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.paused = true
	w.mu.Unlock()
}

func (w *watchdog) resume() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.paused = false
	w.last = time.Now()
	w.mu.Unlock()
}

func (w *watchdog) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.paused {
		w.timer.Reset(w.idle)
		return
	}
	if since := time.Since(w.last); since < w.idle {
		w.timer.Reset(w.idle - since)
		return
	}
	w.stopped = true
	w.fail(ErrKeepalive) // cancels a context: does not block
}

// activity is a reader that tells the watchdog about every byte.
type activity struct {
	r  interface{ Read([]byte) (int, error) }
	wd **watchdog
}

func (a activity) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		(*a.wd).touch()
	}
	return n, err
}
