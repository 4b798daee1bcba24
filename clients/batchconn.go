package clients

import (
	"net"
	"sync"
)

// batchConn is the network connection under a WebSocket connection. While a
// batch is open it collects everything written instead of sending it, and
// flush sends it in one write: frames queued by many concurrent publishes
// leave in one system call and as few TCP segments as they fit in.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	open bool
	buf  []byte
}

// maxBatchBuffer is the capacity kept between batches; a larger buffer
// (a batch of large frames) is dropped after its flush.
const maxBatchBuffer = 256 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.open {
		b.buf = append(b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

// begin opens a batch.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// flush closes the batch and sends what it collected.
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
