package crypto

import (
	"encoding/binary"
	"fmt"
	"io"
)

// writer is an append-only big-endian encoder.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)         { w.b = append(w.b, v) }
func (w *writer) u16(v uint16)       { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32)       { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)       { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) raw(p []byte)       { w.b = append(w.b, p...) }
func (w *writer) bytes16(p []byte)   { w.u16(uint16(len(p))); w.raw(p) }
func (w *writer) str8(s string)      { w.u8(uint8(len(s))); w.b = append(w.b, s...) }
func (w *writer) fixed32(p [32]byte) { w.raw(p[:]) }

// reader is a bounded big-endian decoder. The first failure sticks; callers
// check err once at the end (and before using values that drive allocation).
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(what)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8(what string) uint8 {
	p := r.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) u16(what string) uint16 {
	p := r.take(2, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (r *reader) u32(what string) uint32 {
	p := r.take(4, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (r *reader) u64(what string) uint64 {
	p := r.take(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (r *reader) fixed32(what string) (out [32]byte) {
	copy(out[:], r.take(32, what))
	return out
}

// boundedLen checks a length prefix against min and max.
func (r *reader) boundedLen(n, min, max int, what string) int {
	if r.err != nil {
		return 0
	}
	if n < min || n > max {
		r.err = fmt.Errorf("%w: %s length %d outside [%d,%d]", ErrMalformed, what, n, min, max)
		return 0
	}
	return n
}

func (r *reader) bytes8(min, max int, what string) []byte {
	n := r.boundedLen(int(r.u8(what)), min, max, what)
	return r.take(n, what)
}

func (r *reader) bytes16(min, max int, what string) []byte {
	n := r.boundedLen(int(r.u16(what)), min, max, what)
	return r.take(n, what)
}

func (r *reader) str8(min, max int, what string) string {
	return string(r.bytes8(min, max, what))
}

// done reports the sticky error, or ErrMalformed if bytes remain.
func (r *reader) done(what string) error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %s", ErrMalformed, len(r.b), what)
	}
	return nil
}

// readRand fills p from rand, wrapping failures in ErrRandom.
func readRand(rand io.Reader, p []byte) error {
	if rand == nil {
		return fmt.Errorf("%w: nil reader", ErrRandom)
	}
	if _, err := io.ReadFull(rand, p); err != nil {
		return fmt.Errorf("%w: %v", ErrRandom, err)
	}
	return nil
}

// zero overwrites b with zeros.
func zero(b []byte) {
	clear(b)
}
