package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Envelope format constants. An envelope is
//
//	version u8 | epoch u64 | sender u16 | index u32 | log seq u64 |
//	log hash [24] | ciphertext (padded plaintext + 16-byte tag) | signature [64]
//
// all integers big-endian. See docs/crypto.md.
const (
	// EnvelopeVersion is the envelope format version byte.
	EnvelopeVersion = 1
	// LogHashSize is the number of bytes of the log chain head hash carried
	// in an envelope (SHA-256 truncated to 192 bits).
	LogHashSize = 24
	// EnvelopeHeaderSize is the size of the header before the ciphertext.
	EnvelopeHeaderSize = 1 + 8 + 2 + 4 + 8 + LogHashSize
	// EnvelopeOverhead is the envelope size minus the padded plaintext:
	// header 47 + AEAD tag 16 + signature 64 = 127 bytes.
	EnvelopeOverhead = EnvelopeHeaderSize + chacha20poly1305.Overhead + ed25519.SignatureSize
	// MinPadded is the smallest padding bucket; buckets are powers of two
	// from MinPadded to MaxPadded.
	MinPadded = 256
	// MaxPadded is the largest padding bucket.
	MaxPadded = 1 << 20
	// MaxPlaintext is the largest plaintext Seal accepts (one byte goes to
	// the padding marker).
	MaxPlaintext = MaxPadded - 1
	// MaxEnvelopeSize bounds envelopes accepted by Open.
	MaxEnvelopeSize = MaxPadded + EnvelopeOverhead
)

// LogHead names a point of the operation's log hash chain: its sequence
// number and the first LogHashSize bytes of its hash (see LogChain).
type LogHead struct {
	Seq  uint64
	Hash [LogHashSize]byte
}

// NewLogHead builds the LogHead carried in envelopes from a full log hash.
func NewLogHead(seq uint64, hash [32]byte) LogHead {
	return LogHead{Seq: seq, Hash: [LogHashSize]byte(hash[:LogHashSize])}
}

// LogChain computes the log hash chain link for entry number seq:
// SHA-256(ctxLogChain || 0x00 || prev || seq (u64) || SHA-256(entry)). The
// first entry uses a zero prev.
func LogChain(prev [32]byte, seq uint64, entry []byte) [32]byte {
	eh := sha256.Sum256(entry)
	h := sha256.New()
	h.Write([]byte(ctxLogChain))
	h.Write([]byte{0})
	h.Write(prev[:])
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	h.Write(eh[:])
	return [32]byte(h.Sum(nil))
}

// EnvelopeHeader is the public, signed header of an envelope. The relay can
// read it (it is metadata, see docs/crypto.md).
type EnvelopeHeader struct {
	Epoch       uint64
	SenderIndex uint16 // index of the sender in the epoch's roster
	Index       uint32 // sender's ratchet index
	Log         LogHead
}

func (h *EnvelopeHeader) append(b []byte) []byte {
	w := &writer{b: b}
	w.u8(EnvelopeVersion)
	w.u64(h.Epoch)
	w.u16(h.SenderIndex)
	w.u32(h.Index)
	w.u64(h.Log.Seq)
	w.raw(h.Log.Hash[:])
	return w.b
}

// ParseEnvelopeHeader parses and bounds-checks an envelope without
// verifying it, returning its header. The ciphertext length must be a
// padding bucket plus the tag.
func ParseEnvelopeHeader(env []byte) (EnvelopeHeader, error) {
	var h EnvelopeHeader
	if len(env) > MaxEnvelopeSize {
		return h, fmt.Errorf("%w: envelope %d bytes", ErrTooLarge, len(env))
	}
	if len(env) < MinPadded+EnvelopeOverhead {
		return h, fmt.Errorf("%w: envelope %d bytes", ErrMalformed, len(env))
	}
	if env[0] != EnvelopeVersion {
		return h, fmt.Errorf("%w: envelope version %d", ErrVersion, env[0])
	}
	if !isBucket(len(env) - EnvelopeOverhead) {
		return h, fmt.Errorf("%w: padded size %d", ErrMalformed, len(env)-EnvelopeOverhead)
	}
	r := &reader{b: env[1:EnvelopeHeaderSize]}
	h.Epoch = r.u64("epoch")
	h.SenderIndex = r.u16("sender")
	h.Index = r.u32("index")
	h.Log.Seq = r.u64("log seq")
	copy(h.Log.Hash[:], r.take(LogHashSize, "log hash"))
	return h, r.done("envelope header")
}

// envelopeSigMessage is what the sender signs: ctxEnvelopeSig || 0x00 ||
// len(opID) || opID || epoch head || envelope without signature. The
// operation id and epoch head are implicit (not transmitted) but bound.
func envelopeSigMessage(opID string, epochHead [32]byte, unsigned []byte) []byte {
	w := &writer{b: make([]byte, 0, len(ctxEnvelopeSig)+2+len(opID)+32+len(unsigned))}
	w.raw([]byte(ctxEnvelopeSig))
	w.u8(0)
	w.str8(opID)
	w.fixed32(epochHead)
	w.raw(unsigned)
	return w.b
}

// VerifyEnvelope checks an envelope's signature against the roster of its
// epoch (the relay can call this; it learns nothing beyond the header). It
// returns the parsed header and the sender's key.
func VerifyEnvelope(epochRoster *Roster, env []byte) (EnvelopeHeader, [32]byte, error) {
	h, err := ParseEnvelopeHeader(env)
	if err != nil {
		return h, [32]byte{}, err
	}
	if h.Epoch != epochRoster.Epoch {
		return h, [32]byte{}, fmt.Errorf("%w: envelope epoch %d, roster epoch %d", ErrUnknownEpoch, h.Epoch, epochRoster.Epoch)
	}
	if int(h.SenderIndex) >= len(epochRoster.Members) {
		return h, [32]byte{}, ErrUnknownSender
	}
	key := epochRoster.Members[h.SenderIndex].Key
	n := len(env) - ed25519.SignatureSize
	if !ed25519.Verify(key[:], envelopeSigMessage(epochRoster.OpID, epochRoster.Head, env[:n]), env[n:]) {
		return h, key, fmt.Errorf("%w: envelope", ErrBadSignature)
	}
	return h, key, nil
}

func isBucket(n int) bool {
	return n >= MinPadded && n <= MaxPadded && n&(n-1) == 0
}

// pad returns plaintext || 0x80 || 0x00... filling the smallest bucket
// that holds len(plaintext)+1 bytes.
func pad(plaintext []byte) []byte {
	size := MinPadded
	for size < len(plaintext)+1 {
		size <<= 1
	}
	out := make([]byte, size)
	copy(out, plaintext)
	out[len(plaintext)] = 0x80
	return out
}

// unpad reverses pad.
func unpad(p []byte) ([]byte, error) {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case 0:
			continue
		case 0x80:
			return p[:i], nil
		}
		break
	}
	return nil, fmt.Errorf("%w: padding", ErrMalformed)
}
