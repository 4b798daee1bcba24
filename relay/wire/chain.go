package wire

import (
	"crypto/sha256"
	"hash"
)

// ChainNext returns the chain hash of an entry: SHA-256(prev || entry),
// where prev is the chain hash of the entry before it (32 zero bytes before
// sequence 1) and entry the exact entry bytes. docs/protocol.md, "The log
// and its hash chain".
func ChainNext(prev [HashLen]byte, entry []byte) [HashLen]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(entry)
	var out [HashLen]byte
	h.Sum(out[:0])
	return out
}

// Chainer computes successive chain hashes like ChainNext, reusing one hash
// state. It is not safe for concurrent use.
type Chainer struct{ h hash.Hash }

// Next returns ChainNext(prev, entry).
func (c *Chainer) Next(prev [HashLen]byte, entry []byte) [HashLen]byte {
	if c.h == nil {
		c.h = sha256.New()
	} else {
		c.h.Reset()
	}
	c.h.Write(prev[:])
	c.h.Write(entry)
	var out [HashLen]byte
	c.h.Sum(out[:0])
	return out
}
