package session

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// An encrypted blob in the session's Store (an operation's state, its
// outbox) is: magic (4) ‖ version ‖ nonce (24) ‖ XChaCha20-Poly1305(key,
// nonce, CBOR, AD), with the key derived from the identity (statePurpose)
// and AD = magic ‖ version ‖ 0x00 ‖ str8(op) ‖ own Ed25519 public key, so a
// blob opens only as the kind, operation and identity it was sealed for.

// blobKind is a kind of blob: its magic, its bound, and how errors name it.
type blobKind struct {
	magic string // 4 bytes
	max   int    // bound on a blob's size
	file  string // "a state file"
	owner string // "state": "another identity's state"
}

var (
	stateBlob  = blobKind{magic: stateMagic, max: maxStateFile, file: "a state file", owner: "state"}
	outboxBlob = blobKind{magic: outboxMagic, max: maxOutboxFile, file: "an outbox file", owner: "outbox"}
)

func (k blobKind) ad(op string, self [32]byte) []byte {
	ad := []byte(k.magic)
	ad = append(ad, stateVersion, 0, byte(len(op)))
	ad = append(ad, op...)
	return append(ad, self[:]...)
}

// sealBlob encrypts pt as a blob of kind k for op.
func (s *Session) sealBlob(k blobKind, op string, pt []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key[:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(k.magic)+1+len(nonce)+len(pt)+chacha20poly1305.Overhead)
	out = append(out, k.magic...)
	out = append(out, stateVersion)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, pt, k.ad(op, s.self)), nil
}

// openBlob checks that b is a blob of kind k and decrypts it as op's; name
// names b in errors. The caller clears the plaintext after use.
func (s *Session) openBlob(k blobKind, op, name string, b []byte) ([]byte, error) {
	m := len(k.magic)
	hdr := m + 1 + chacha20poly1305.NonceSizeX
	if len(b) < hdr+chacha20poly1305.Overhead || len(b) > k.max || string(b[:m]) != k.magic || b[m] != stateVersion {
		return nil, fmt.Errorf("session: %s: not %s", name, k.file)
	}
	aead, err := chacha20poly1305.NewX(s.key[:])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, b[m+1:hdr], b[hdr:], k.ad(op, s.self))
	if err != nil {
		return nil, fmt.Errorf("session: %s: cannot decrypt (another identity's %s, or damaged)", name, k.owner)
	}
	return pt, nil
}
