package relay

import (
	"net"
	"sync"
)

// BatchListener wraps ln so that the relay can send the frames queued for a
// connection in one write (one system call) instead of one write per frame.
// Wrap the plain TCP listener, under any TLS listener; connections that do
// not come through it are written frame by frame.
func BatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

// batchConn collects what is written while a batch is open and sends it in
// one write when the batch is flushed. Outside a batch it writes through.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	open bool
	buf  []byte
}

// maxBatchBuffer is the capacity kept between batches; a larger buffer is
// dropped after its flush so that an idle connection holds nothing.
const maxBatchBuffer = 64 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.open {
		if len(b.buf) > 0 && len(b.buf)+len(p) > maxBatchBuffer {
			// A big batch goes out in pieces of about maxBatchBuffer.
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

func (b *batchConn) begin() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// flush closes the batch and writes what it collected. The buffer is kept
// for the next batch only while small.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > maxBatchBuffer {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}
