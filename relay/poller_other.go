//go:build !linux

package relay

import (
	"errors"
	"syscall"
	"time"
)

// poller is Linux only: elsewhere every connection has a reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("no epoll on this platform") }

func (p *poller) run(func(*conn), func(), time.Duration) error { return nil }

func (p *poller) each(func(*conn)) {}

func (p *poller) stop() {}

func (p *poller) hasFailed() bool { return false }

func (p *poller) add(*conn, syscall.RawConn, func(uint64)) error {
	return errors.New("no epoll on this platform")
}

func (p *poller) arm(syscall.RawConn, uint64) error { return errors.New("no epoll on this platform") }

func (p *poller) remove(uint64) {}

func readSocket(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("no epoll on this platform")
}

func canPoll() error { return errors.New("no epoll on this platform") }
