//go:build linux

package relay

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// epollWait is syscall.EpollWait; a test makes it fail to exercise the
// poller's failure path, which no real error reaches on demand.
var epollWait = syscall.EpollWait

// errPollerClosed reports a poller that has stopped.
var errPollerClosed = errors.New("poller stopped")

// pollEvents are the events a connection waits for: readable, or the peer
// gone. One-shot: after an event the connection is not watched again until
// its reader re-arms it, so one reader at most runs per connection.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// poller watches the sockets of idle connections with one epoll instance
// and one goroutine, and starts a short-lived reader for a connection when
// its socket becomes readable (poll.go).
type poller struct {
	epfd int
	wake [2]int // a pipe: writing to wake[1] stops run
	// fdmu guards the descriptors against use after run closed them (a
	// closed number may be reused by another file).
	fdmu     sync.RWMutex
	fdClosed bool

	mu      sync.Mutex
	conns   map[uint64]*conn // watched connections by id (the event's data)
	next    uint64
	stopped bool
	failed  bool // run ended on an epoll error
}

// newPoller opens the epoll instance.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &poller{epfd: epfd, conns: make(map[uint64]*conn), next: 1}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // data 0: the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return p, nil
}

func (p *poller) closeFDs() {
	p.fdmu.Lock()
	defer p.fdmu.Unlock()
	p.fdClosed = true
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	syscall.Close(p.epfd)
}

// run waits for events until stop, calling ready for each connection whose
// socket is readable (or closed by the peer), and sweep every interval. It
// closes the poller's file descriptors when it returns: nil after stop, the
// error if epoll failed.
func (p *poller) run(ready func(*conn), sweep func(), every time.Duration) error {
	defer p.closeFDs()
	events := make([]syscall.EpollEvent, 128)
	next := time.Now().Add(every)
	for {
		if wait := time.Until(next); wait <= 0 {
			sweep()
			next = time.Now().Add(every)
		}
		n, err := epollWait(p.epfd, events, int(max(time.Until(next).Milliseconds(), 1)))
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// Recorded before the deferred closeFDs, so a reader whose
			// arm fails on the closed descriptors sees why.
			p.mu.Lock()
			p.failed = true
			p.mu.Unlock()
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			if id == 0 && p.stopped {
				p.mu.Unlock()
				return nil
			}
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				ready(c)
			}
		}
	}
}

// each calls fn for every watched connection; fn must not block.
func (p *poller) each(fn func(*conn)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		fn(c)
	}
}

// hasFailed reports whether run ended on an epoll error.
func (p *poller) hasFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// stop ends run.
func (p *poller) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.fdmu.RLock()
	defer p.fdmu.RUnlock()
	if !p.fdClosed {
		_, _ = syscall.Write(p.wake[1], []byte{0})
	}
}

// add watches rc's socket for c, first calling setID with the id the
// poller knows it by.
func (p *poller) add(c *conn, rc syscall.RawConn, setID func(uint64)) error {
	p.mu.Lock()
	id := p.next
	p.next++
	setID(id)
	p.conns[id] = c
	p.mu.Unlock()
	if err := p.ctl(rc, syscall.EPOLL_CTL_ADD, id); err != nil {
		p.remove(id)
		return err
	}
	return nil
}

// arm watches c's socket again after its reader drained it.
func (p *poller) arm(rc syscall.RawConn, id uint64) error {
	return p.ctl(rc, syscall.EPOLL_CTL_MOD, id)
}

// ctl runs epoll_ctl on rc's descriptor while rc keeps it open, so a closed
// and reused descriptor number is never touched.
func (p *poller) ctl(rc syscall.RawConn, op int, id uint64) error {
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	p.fdmu.RLock()
	defer p.fdmu.RUnlock()
	if p.fdClosed {
		return errPollerClosed
	}
	var cerr error
	err := rc.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	return err
}

// remove forgets id; the kernel drops the socket from the epoll set when
// the socket is closed.
func (p *poller) remove(id uint64) {
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
}

// readSocket reads what rc's socket holds into b without waiting: n is 0
// with a nil error when there is nothing to read (EAGAIN), and io.EOF when
// the peer closed.
func readSocket(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, errEOF
	}
	return n, nil
}

// canPoll reports whether this system can run a poller.
func canPoll() error {
	p, err := newPoller()
	if err != nil {
		return err
	}
	p.closeFDs()
	return nil
}
