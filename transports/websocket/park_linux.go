package websocket

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// A WebSocket that has been quiet for parkAfter gives its reading
// goroutine back (wire.Parker): an idle connection then costs no stack,
// only its structures. The parked sockets wait in an epoll set of the
// transport's own, whose descriptor waits in turn in the runtime's poller,
// so no thread blocks for them either. The first readable socket, or the
// end of one, starts a goroutine that reads it as before.
//
// A busy connection never parks: its goroutine waits in the runtime's
// poller as any socket reader does, and only a read deadline parkAfter
// after the wait began (set once, not per message) sends it to the epoll
// set. A connection that is busy again pays one goroutine start.

// poller is the epoll set of one transport's parked connections.
//
// Invariants, under mu:
//   - parked holds exactly the connections whose resume has not been
//     called since they parked; each is in the epoll set (one-shot) with
//     its id. Whoever removes one from parked calls its resume, once.
//   - A connection that was shut is never parked again.
//   - The loop goroutine runs while running is set; it stops, closing the
//     epoll set, when parked is empty, so a transport without parked
//     connections holds no goroutine and no descriptor.
type poller struct {
	after time.Duration // how long a wait lasts before it parks; 0: parkAfter

	mu      sync.Mutex
	ep      *os.File // the epoll set, in the runtime's poller; nil while stopped
	epfd    int
	running bool
	nextID  int32
	parked  map[int32]*idleReader
}

// delay is how long a wait lasts before it parks.
func (p *poller) delay() time.Duration {
	if p.after > 0 {
		return p.after
	}
	return parkAfter
}

// parkedLen returns the number of parked connections.
func (p *poller) parkedLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// park puts r's socket in the epoll set; resume runs once it is readable
// or shut. It reports false when r cannot park (it was shut, or epoll
// failed): the caller then waits as before.
func (p *poller) park(r *idleReader, resume func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.shut || !p.startLocked() {
		return false
	}
	if r.id == 0 {
		p.nextID++
		if p.nextID <= 0 {
			p.nextID = 1
		}
		r.id = p.nextID
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: r.id}
	var err error
	if cerr := r.rc.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil || err != nil {
		return false
	}
	r.resume = resume
	p.parked[r.id] = r
	return true
}

// shut wakes r if it is parked and keeps it from parking again: the
// connection is about to close its socket, and the read that follows
// must see that.
func (p *poller) shut(r *idleReader) {
	p.mu.Lock()
	r.shut = true
	resume := p.takeLocked(r)
	p.mu.Unlock()
	if resume != nil {
		resume()
	}
}

// takeLocked removes r from the parked set and the epoll set, and returns
// its resume, or nil when r was not parked.
func (p *poller) takeLocked(r *idleReader) func() {
	if r.id == 0 || p.parked[r.id] != r {
		return nil
	}
	delete(p.parked, r.id)
	// Inside Control the descriptor cannot be closed and reused; a
	// socket already closed has left the epoll set with its descriptor.
	r.rc.Control(func(fd uintptr) { syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) })
	resume := r.resume
	r.resume = nil
	if len(p.parked) == 0 {
		p.ep.SetReadDeadline(time.Unix(1, 0)) // wake the loop, to stop
	}
	return resume
}

// startLocked makes sure the epoll set exists and the loop runs.
func (p *poller) startLocked() bool {
	if p.running {
		return true
	}
	if p.ep == nil {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return false
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return false
		}
		p.ep, p.epfd = os.NewFile(uintptr(fd), "websocket-park"), fd
		p.parked = make(map[int32]*idleReader)
	}
	rc, err := p.ep.SyscallConn()
	if err != nil {
		return false
	}
	p.ep.SetReadDeadline(time.Time{})
	p.running = true
	go p.loop(p.ep, rc)
	return true
}

// loop resumes the parked connections whose sockets turn readable, until
// none is parked.
func (p *poller) loop(ep *os.File, rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 64)
	var n int
	wait := func(fd uintptr) bool {
		n, _ = syscall.EpollWait(int(fd), events, 0)
		return n > 0
	}
	var resumes []func()
	for {
		err := rc.Read(wait)
		p.mu.Lock()
		if err != nil {
			if len(p.parked) > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				// takeLocked's wake-up, but a connection parked since.
				ep.SetReadDeadline(time.Time{})
				p.mu.Unlock()
				continue
			}
			resumes = p.stopLocked(ep, resumes)
			p.mu.Unlock()
			for _, f := range resumes {
				f()
			}
			return
		}
		for _, ev := range events[:n] {
			if r := p.parked[ev.Fd]; r != nil {
				resumes = append(resumes, p.takeLocked(r))
			}
		}
		p.mu.Unlock()
		for i, f := range resumes {
			f()
			resumes[i] = nil
		}
		resumes = resumes[:0]
	}
}

// stopLocked ends the loop: it closes the epoll set and returns the
// resumes of whatever is still parked (only after a failure of the set),
// whose reads then wait as before.
func (p *poller) stopLocked(ep *os.File, resumes []func()) []func() {
	for _, r := range p.parked {
		resumes = append(resumes, p.takeLocked(r))
	}
	p.running = false
	p.ep = nil
	ep.Close()
	return resumes
}
