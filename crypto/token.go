package crypto

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// Token format constants.
const (
	// TokenVersion is the token format version byte.
	TokenVersion = 1
	// TokenPrefix starts the printable form of a token.
	TokenPrefix = "liaison-id1:"
	// MaxTokenSize bounds the binary token: version, key, name, HPKE key,
	// signature.
	MaxTokenSize = 1 + 32 + 1 + MaxNameLen + 2 + HPKEPublicKeySize + 64
	// MaxTokenTextSize bounds the printable form.
	MaxTokenTextSize = len(TokenPrefix) + (MaxTokenSize*4+2)/3
)

// Token is a public identity: what `liaison id export` prints and what an
// admin uses to add someone. It is self-signed by SigningKey, which binds the
// display name and the initial HPKE key (MLKEM768-X25519) to the identity.
type Token struct {
	SigningKey [32]byte // Ed25519 public key
	Name       string   // display name, 1..MaxNameLen bytes of UTF-8
	HPKEKey    []byte   // initial HPKE public key, HPKEPublicKeySize bytes
	Signature  [64]byte // Ed25519 over ctxTokenSig || body
}

func (t *Token) body() []byte {
	w := &writer{b: make([]byte, 0, MaxTokenSize)}
	w.u8(TokenVersion)
	w.fixed32(t.SigningKey)
	w.str8(t.Name)
	w.bytes16(t.HPKEKey)
	return w.b
}

func (t *Token) signedBytes() []byte {
	return append([]byte(ctxTokenSig), t.body()...)
}

// Marshal returns the binary token.
func (t *Token) Marshal() []byte {
	return append(t.body(), t.Signature[:]...)
}

// String returns the printable token: TokenPrefix + unpadded base64url of
// the binary form.
func (t *Token) String() string {
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(t.Marshal())
}

// Fingerprint returns the token's fingerprint (see Fingerprint).
func (t *Token) Fingerprint() string { return Fingerprint(t.SigningKey) }

// Verify checks the token's fields and self-signature.
func (t *Token) Verify() error {
	if err := checkName(t.Name); err != nil {
		return err
	}
	if len(t.HPKEKey) != HPKEPublicKeySize {
		return fmt.Errorf("%w: token hpke key size %d", ErrBadKey, len(t.HPKEKey))
	}
	if _, err := kem.NewPublicKey(t.HPKEKey); err != nil {
		return fmt.Errorf("%w: token hpke key: %v", ErrBadKey, err)
	}
	if !ed25519.Verify(t.SigningKey[:], t.signedBytes(), t.Signature[:]) {
		return fmt.Errorf("%w: token", ErrBadSignature)
	}
	return nil
}

// ParseToken decodes a binary token and verifies it.
func ParseToken(b []byte) (*Token, error) {
	if len(b) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token %d bytes", ErrTooLarge, len(b))
	}
	r := &reader{b: b}
	t, err := readToken(r)
	if err != nil {
		return nil, err
	}
	if err := r.done("token"); err != nil {
		return nil, err
	}
	return t, nil
}

// readToken reads and verifies one token from r.
func readToken(r *reader) (*Token, error) {
	if v := r.u8("token version"); r.err == nil && v != TokenVersion {
		return nil, fmt.Errorf("%w: token version %d", ErrVersion, v)
	}
	t := &Token{}
	t.SigningKey = r.fixed32("token key")
	t.Name = r.str8(1, MaxNameLen, "token name")
	t.HPKEKey = append([]byte(nil), r.bytes16(HPKEPublicKeySize, HPKEPublicKeySize, "token hpke key")...)
	copy(t.Signature[:], r.take(64, "token signature"))
	if r.err != nil {
		return nil, r.err
	}
	if err := t.Verify(); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseTokenString decodes and verifies the printable form produced by
// Token.String. Surrounding whitespace is ignored; anything else is strict.
func ParseTokenString(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenTextSize {
		return nil, fmt.Errorf("%w: token text %d bytes", ErrTooLarge, len(s))
	}
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: token prefix", ErrVersion)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: token base64: %v", ErrMalformed, err)
	}
	return ParseToken(b)
}
