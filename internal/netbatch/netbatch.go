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

// MaxBuffer bounds what a batch holds before it writes a piece. The
// buffer is borrowed from a pool shared by every Conn for the length of a
// batch, so a connection between batches holds none.
const MaxBuffer = 64 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, MaxBuffer); return &b }}

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
		if len(p) >= MaxBuffer {
			// A big frame goes out as it is, after what came before it,
			// instead of being copied through the buffer.
			if len(b.buf) > 0 {
				_, err := b.Conn.Write(b.buf)
				b.buf = b.buf[:0]
				if err != nil {
					b.mu.Unlock()
					return 0, err
				}
			}
			n, err := b.Conn.Write(p)
			b.mu.Unlock()
			return n, err
		}
		if b.buf == nil {
			b.buf = (*bufs.Get().(*[]byte))[:0]
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
	if b.buf == nil {
		return nil
	}
	var err error
	if len(b.buf) > 0 {
		_, err = b.Conn.Write(b.buf)
	}
	if cap(b.buf) <= 2*MaxBuffer {
		buf := b.buf[:0]
		bufs.Put(&buf)
	}
	b.buf = nil
	return err
}
