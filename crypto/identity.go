package crypto

import (
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// Sizes of identity key material.
const (
	// SeedSize is the size of the Ed25519 seed and of the HPKE private key
	// seed (an MLKEM768-X25519 private key is a 32-byte seed).
	SeedSize = 32
	// HPKEPublicKeySize is the size of an MLKEM768-X25519 public key.
	HPKEPublicKeySize = 1216
	// MaxNameLen is the maximum display-name length in bytes.
	MaxNameLen = 64
)

// kem is the HPKE KEM used for every leaf and initial key.
var kem = hpke.MLKEM768X25519()

// Identity is a device's private identity: an Ed25519 signing key, the
// private half of the initial HPKE key advertised in its token, and a display
// name. It is stored encrypted in an identity file (see EncryptIdentity).
type Identity struct {
	name     string
	signSeed [SeedSize]byte
	hpkeSeed [SeedSize]byte
	sign     ed25519.PrivateKey
	hpkePriv hpke.PrivateKey
	token    *Token
}

// NewIdentity generates an identity with the given display name, reading 64
// bytes from rand.
func NewIdentity(rand io.Reader, name string) (*Identity, error) {
	var seeds [2 * SeedSize]byte
	defer zero(seeds[:])
	if err := readRand(rand, seeds[:]); err != nil {
		return nil, err
	}
	return identityFromSeeds(name, seeds[:SeedSize], seeds[SeedSize:])
}

func identityFromSeeds(name string, signSeed, hpkeSeed []byte) (*Identity, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	id := &Identity{name: name}
	copy(id.signSeed[:], signSeed)
	copy(id.hpkeSeed[:], hpkeSeed)
	id.sign = ed25519.NewKeyFromSeed(id.signSeed[:])
	priv, err := kem.NewPrivateKey(id.hpkeSeed[:])
	if err != nil {
		return nil, fmt.Errorf("%w: hpke seed: %v", ErrBadKey, err)
	}
	id.hpkePriv = priv
	t := &Token{Name: name, HPKEKey: priv.PublicKey().Bytes()}
	copy(t.SigningKey[:], id.sign.Public().(ed25519.PublicKey))
	t.Signature = [64]byte(ed25519.Sign(id.sign, t.signedBytes()))
	id.token = t
	return id, nil
}

// Name returns the display name.
func (id *Identity) Name() string { return id.name }

// PublicKey returns the Ed25519 signing public key, the identity's id.
func (id *Identity) PublicKey() [32]byte { return id.token.SigningKey }

// Token returns the public identity token (a copy).
func (id *Identity) Token() *Token {
	t := *id.token
	t.HPKEKey = append([]byte(nil), id.token.HPKEKey...)
	return &t
}

// Fingerprint returns the identity's own fingerprint (see Fingerprint).
func (id *Identity) Fingerprint() string { return Fingerprint(id.token.SigningKey) }

// Destroy zeroes the identity's private key material. The Identity must not
// be used afterwards.
func (id *Identity) Destroy() {
	zero(id.signSeed[:])
	zero(id.hpkeSeed[:])
	zero(id.sign)
	id.hpkePriv = nil
}

// checkName validates a display name: 1..MaxNameLen bytes of valid UTF-8
// without control characters.
func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: length %d not in [1,%d]", ErrBadName, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("%w: control character", ErrBadName)
		}
	}
	return nil
}
