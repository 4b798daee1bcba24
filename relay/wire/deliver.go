package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Deliver frames carry almost every byte a subscriber reads, so they have
// their own encoder and decoder besides the general CBOR codec: no
// reflection, one allocation for the encoded frame. Both produce and accept
// exactly what the general codec does (deliver_test.go and FuzzDeliver
// compare them): the encoder writes the core deterministic encoding, and the
// decoder takes the fast path only for input in the layout that encoding
// has (keys 1 to 5 in order, each value of the expected major type) and
// hands anything else to the general decoder, which accepts or rejects it
// as before.

// CBOR major types.
const (
	majUint  = 0 << 5
	majBytes = 2 << 5
	majText  = 3 << 5
	majArray = 4 << 5
	majMap   = 5 << 5
)

// headLen is the length of the CBOR head of an item whose argument is v.
func headLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

// appendHead appends the shortest CBOR head of major type maj with argument v.
func appendHead(b []byte, maj byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(b, maj|byte(v))
	case v <= 0xff:
		return append(b, maj|24, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, maj|25), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, maj|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, maj|27), v)
}

// deliverLen is the length of d's encoding.
func deliverLen(d *Deliver) int {
	n := 1 + 1 + // type byte, map head
		1 + headLen(uint64(len(d.Op))) + len(d.Op) +
		1 + headLen(d.Seq) +
		1 + headLen(uint64(len(d.Prev))) + len(d.Prev) +
		1 + headLen(uint64(len(d.Envelopes)))
	for _, e := range d.Envelopes {
		n += headLen(uint64(len(e))) + len(e)
	}
	if len(d.Kinds) > 0 {
		n += 1 + headLen(uint64(len(d.Kinds))) + len(d.Kinds)
	}
	return n
}

// encodeDeliver is Encode for a valid Deliver: the same bytes.
func encodeDeliver(d *Deliver) []byte {
	return appendDeliver(make([]byte, 0, deliverLen(d)), d)
}

// AppendDeliver appends the encoding of d (what Encode returns) to b, so
// that a caller can encode into a buffer it reuses.
func AppendDeliver(b []byte, d *Deliver) ([]byte, error) {
	if err := d.validate(); err != nil {
		return b, fmt.Errorf("wire: encode %s: %w", d.Type(), err)
	}
	return appendDeliver(slices.Grow(b, deliverLen(d)), d), nil
}

func appendDeliver(b []byte, d *Deliver) []byte {
	pairs := uint64(4)
	if len(d.Kinds) > 0 {
		pairs++
	}
	b = append(b, byte(TypeDeliver))
	b = appendHead(b, majMap, pairs)
	b = appendHead(b, majUint, 1)
	b = appendHead(b, majText, uint64(len(d.Op)))
	b = append(b, d.Op...)
	b = appendHead(b, majUint, 2)
	b = appendHead(b, majUint, d.Seq)
	b = appendHead(b, majUint, 3)
	b = appendHead(b, majBytes, uint64(len(d.Prev)))
	b = append(b, d.Prev...)
	b = appendHead(b, majUint, 4)
	b = appendHead(b, majArray, uint64(len(d.Envelopes)))
	for _, e := range d.Envelopes {
		b = appendHead(b, majBytes, uint64(len(e)))
		b = append(b, e...)
	}
	if len(d.Kinds) > 0 {
		b = appendHead(b, majUint, 5)
		b = appendHead(b, majBytes, uint64(len(d.Kinds)))
		b = append(b, d.Kinds...)
	}
	return b
}

// cborReader reads CBOR heads from a byte slice; any problem sets bad.
type cborReader struct {
	b   []byte
	bad bool
}

// head reads one head of major type maj and returns its argument.
func (r *cborReader) head(maj byte) uint64 {
	if r.bad || len(r.b) == 0 || r.b[0]&0xe0 != maj {
		r.bad = true
		return 0
	}
	info := r.b[0] & 0x1f
	var v uint64
	switch {
	case info < 24:
		v, r.b = uint64(info), r.b[1:]
	case info == 24 && len(r.b) >= 2:
		v, r.b = uint64(r.b[1]), r.b[2:]
	case info == 25 && len(r.b) >= 3:
		v, r.b = uint64(binary.BigEndian.Uint16(r.b[1:])), r.b[3:]
	case info == 26 && len(r.b) >= 5:
		v, r.b = uint64(binary.BigEndian.Uint32(r.b[1:])), r.b[5:]
	case info == 27 && len(r.b) >= 9:
		v, r.b = binary.BigEndian.Uint64(r.b[1:]), r.b[9:]
	default:
		r.bad = true
	}
	return v
}

// key reads map key k.
func (r *cborReader) key(k uint64) {
	if r.head(majUint) != k {
		r.bad = true
	}
}

// bytes reads a definite-length byte (maj majBytes) or text string and
// returns it, aliasing the input.
func (r *cborReader) bytes(maj byte) []byte {
	n := r.head(maj)
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// decodeDeliverFast decodes body (a deliver frame without its type byte)
// if it has the layout the encoder writes; ok is false otherwise, and the
// caller uses the general decoder. The frame owns its byte slices; its
// envelopes share one allocation.
func decodeDeliverFast(body []byte) (d *Deliver, ok bool) {
	r := cborReader{b: body}
	pairs := r.head(majMap)
	if pairs != 4 && pairs != 5 {
		return nil, false
	}
	r.key(1)
	op := r.bytes(majText)
	r.key(2)
	seq := r.head(majUint)
	r.key(3)
	prev := r.bytes(majBytes)
	r.key(4)
	count := r.head(majArray)
	if r.bad || count > MaxDeliverEntries || count > uint64(len(r.b)) {
		return nil, false
	}
	// The envelopes lie in order in one region of body, between their
	// heads. They are copied out with that region, in one allocation
	// (without zeroing it first), and each is capped at its own length,
	// so appending to one never overwrites the next.
	envs := make([][]byte, count)
	start := len(body) - len(r.b)
	for i := range envs {
		envs[i] = r.bytes(majBytes)
	}
	end := len(body) - len(r.b)
	var kinds []byte
	if pairs == 5 {
		r.key(5)
		kinds = r.bytes(majBytes)
	}
	if r.bad || len(r.b) != 0 {
		return nil, false
	}
	d = &Deliver{Op: string(op), Seq: seq, Prev: append(make([]byte, 0, len(prev)), prev...)}
	region := append([]byte(nil), body[start:end]...)
	for i, e := range envs {
		// e is body[o:o+len(e)], so cap(body)-cap(e) is o.
		o := cap(body) - cap(e) - start
		envs[i] = region[o : o+len(e) : o+len(e)]
	}
	d.Envelopes = envs
	if pairs == 5 {
		d.Kinds = append(make([]byte, 0, len(kinds)), kinds...)
	}
	return d, true
}

// decodeDeliver decodes and validates a deliver frame's body, by the fast
// path when it can.
func decodeDeliver(body []byte) (*Deliver, error) {
	d, ok := decodeDeliverFast(body)
	if !ok {
		d = new(Deliver)
		if err := decMode.Unmarshal(body, d); err != nil {
			return nil, err
		}
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}
