package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"math"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// MaxSkip is the number of skipped message keys kept per sender per epoch
// for out-of-order delivery, and the largest forward jump accepted.
const MaxSkip = 2000

// msgKey is a single-use XChaCha20-Poly1305 key followed by its nonce.
type msgKey [chacha20poly1305.KeySize + chacha20poly1305.NonceSizeX]byte

type skippedKey struct {
	index uint32
	key   msgKey
}

// chain is one sender's hash ratchet in one epoch.
type chain struct {
	ck      [32]byte
	next    uint32       // index of the next message key ck yields
	skipped []skippedKey // ascending by index, at most MaxSkip
}

// step derives the message key for the current index and the next chain key:
//
//	mk  = HKDF-Expand(ck, ctxMessageKey, 56)  (32-byte key || 24-byte nonce)
//	ck' = HKDF-Expand(ck, ctxChainNext, 32)
func step(ck *[32]byte) (mk msgKey) {
	m, err := hkdf.Expand(sha256.New, ck[:], ctxMessageKey, len(mk))
	if err != nil {
		panic(err) // unreachable: fixed, valid lengths
	}
	n, err := hkdf.Expand(sha256.New, ck[:], ctxChainNext, 32)
	if err != nil {
		panic(err) // unreachable
	}
	copy(mk[:], m)
	copy(ck[:], n)
	zero(m)
	zero(n)
	return mk
}

// chainLookup is the result of finding the key for index in a chain
// without mutating it; commit applies it after successful decryption.
type chainLookup struct {
	key     msgKey
	late    bool         // came from the skipped window
	missed  uint32       // indices newly skipped
	newCK   [32]byte     // chain key after index (if !late)
	newSkip []skippedKey // skipped keys to add (if !late)
}

// lookup finds the message key for index. ok=false with replay=true means
// the index was already consumed or evicted; with replay=false it is too
// far ahead.
func (c *chain) lookup(index uint32) (l chainLookup, ok, replay bool) {
	if index < c.next {
		i, found := slices.BinarySearchFunc(c.skipped, index, func(s skippedKey, x uint32) int {
			return int64cmp(int64(s.index), int64(x))
		})
		if !found {
			return l, false, true
		}
		l.key = c.skipped[i].key
		l.late = true
		return l, true, false
	}
	if index-c.next > MaxSkip || index == math.MaxUint32 {
		return l, false, false
	}
	l.newCK = c.ck
	l.missed = index - c.next
	for j := c.next; j < index; j++ {
		l.newSkip = append(l.newSkip, skippedKey{index: j, key: step(&l.newCK)})
	}
	l.key = step(&l.newCK)
	return l, true, false
}

// commit applies a successful lookup for index, deleting used keys and
// evicting the oldest skipped keys beyond MaxSkip.
func (c *chain) commit(index uint32, l *chainLookup) {
	if l.late {
		i, found := slices.BinarySearchFunc(c.skipped, index, func(s skippedKey, x uint32) int {
			return int64cmp(int64(s.index), int64(x))
		})
		if found {
			zero(c.skipped[i].key[:])
			c.skipped = slices.Delete(c.skipped, i, i+1)
		}
		return
	}
	c.ck = l.newCK
	c.next = index + 1
	c.skipped = append(c.skipped, l.newSkip...)
	if over := len(c.skipped) - MaxSkip; over > 0 {
		for i := range over {
			zero(c.skipped[i].key[:])
		}
		c.skipped = slices.Delete(c.skipped, 0, over)
	}
	zero(l.newCK[:])
}

func (c *chain) destroy() {
	zero(c.ck[:])
	for i := range c.skipped {
		zero(c.skipped[i].key[:])
	}
	c.skipped = nil
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
