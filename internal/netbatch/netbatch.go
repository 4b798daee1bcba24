// Package netbatch lets a writer send many small messages (WebSocket frames)
// in one write: a Conn collects what is written while a batch is open and
// sends it when the batch is flushed, in pieces of at most MaxBuffer bytes.
// Outside a batch it writes through. relay (server side, through Listener)
// and clients (dial side) share it; it imports nothing of ours.
package netbatch

import (
	"net"
	"sync"
)

// MaxBuffer bounds what a batch holds before it writes a piece, and the
// buffer kept between batches, so an idle connection holds nothing large.
const MaxBuffer = 64 << 10

// Conn is a net.Conn whose writes can be batched.
type Conn struct {
	net.Conn
	mu   sync.Mutex
	open bool
	buf  []byte
}

// Wrap returns c with batching.
func Wrap(c net.Conn) *Conn { return &Conn{Conn: c} }

// Listener wraps ln so that every accepted connection is a *Conn. Wrap the
// plain TCP listener, under any TLS listener.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Write implements net.Conn: inside a batch it collects p.
func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.open {
		if len(b.buf) > 0 && len(b.buf)+len(p) > MaxBuffer {
			// A big batch goes out in pieces of about MaxBuffer.
			_, err := b.Conn.Write(b.buf)
			b.buf = b.buf[:0]
			if err != nil {
				b.mu.Unlock()
				return 0, err
			}
		}
		b.buf = append(b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

// Begin opens a batch.
func (b *Conn) Begin() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// Flush closes the batch and writes what it collected.
func (b *Conn) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > MaxBuffer {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}
