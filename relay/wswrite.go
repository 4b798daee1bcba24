package relay

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is what a connection writes through (and, for a connection with a
// reader goroutine, reads through): gorilla's *websocket.Conn, or for a
// polled connection a frameWriter, so that a polled connection keeps no
// gorilla Conn (about 700 bytes with its read buffer) once upgraded.
type wsConn interface {
	WriteMessage(messageType int, data []byte) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetWriteDeadline(t time.Time) error
	NetConn() net.Conn
	Close() error
}

// smallFrame is the largest frame frameWriter copies into one buffer to
// write it with its header in one write; a larger one is written as header
// and payload (one writev on a TCP connection).
const smallFrame = 16 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallFrame+maxHeader); return &b }}

// maxHeader is the largest server frame header (no mask).
const maxHeader = 10

// errControlTooLong reports a control frame payload over 125 bytes;
// errWriteTimeout, a control frame that could not be written before its
// deadline because a data frame was being written.
var (
	errControlTooLong = errors.New("websocket: control frame payload over 125 bytes")
	errWriteTimeout   = errors.New("websocket: timed out waiting for a write in progress")
)

// frameWriter writes server WebSocket frames (RFC 6455: unmasked, one
// frame per message, no extensions) on a polled connection. Like gorilla's
// Conn it takes control frames from any goroutine, holds a write deadline
// for data frames (SetWriteDeadline) and fails every write after a failed
// one or after a close frame (websocket.ErrCloseSent).
type frameWriter struct {
	nc       net.Conn
	mu       sync.Mutex
	deadline time.Time // for WriteMessage
	err      error     // sticky
}

func (w *frameWriter) NetConn() net.Conn { return w.nc }

func (w *frameWriter) Close() error { return w.nc.Close() }

func (w *frameWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	w.deadline = t
	w.mu.Unlock()
	return nil
}

func (w *frameWriter) WriteMessage(messageType int, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(byte(messageType), data, w.deadline)
}

func (w *frameWriter) WriteControl(messageType int, data []byte, deadline time.Time) error {
	if len(data) > maxControlPayload {
		return errControlTooLong
	}
	// Like gorilla, wait for a data write in progress only until the
	// deadline (it may itself wait up to WriteTimeout).
	for wait := 100 * time.Microsecond; !w.mu.TryLock(); wait = min(2*wait, 10*time.Millisecond) {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return errWriteTimeout
		}
		time.Sleep(wait)
	}
	defer w.mu.Unlock()
	return w.writeLocked(byte(messageType), data, deadline)
}

func (w *frameWriter) writeLocked(op byte, data []byte, deadline time.Time) error {
	if w.err != nil {
		return w.err
	}
	if err := w.nc.SetWriteDeadline(deadline); err != nil {
		w.err = err
		return err
	}
	var hb [maxHeader]byte
	h := appendHeader(hb[:0], op, len(data))
	var err error
	if len(data) <= smallFrame {
		bp := writeBufs.Get().(*[]byte)
		b := append(append((*bp)[:0], h...), data...)
		_, err = w.nc.Write(b)
		*bp = b[:0]
		writeBufs.Put(bp)
	} else {
		bufs := net.Buffers{h, data}
		_, err = bufs.WriteTo(w.nc)
	}
	switch {
	case err != nil:
		w.err = err
	case op == opClose:
		w.err = websocket.ErrCloseSent
	}
	return err
}

// appendHeader appends the header of a final, unmasked frame of opcode op
// with an n-byte payload.
func appendHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
