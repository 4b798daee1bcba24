package crypto

import (
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
)

// EpochSecretSize is the size of an epoch secret.
const EpochSecretSize = 32

// HPKE ciphersuite for sealed epoch secrets: MLKEM768-X25519 (kem),
// HKDF-SHA256, ChaCha20-Poly1305.
var (
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.ChaCha20Poly1305()
)

// sealInfo is the HPKE info for the epoch secret sealed to recipient in a
// commit: ctxEpochSeal || 0x00 || len(opID) || opID || epoch (u64) ||
// content hash || recipient signing key.
func sealInfo(opID string, epoch uint64, content [32]byte, recipient [32]byte) []byte {
	w := &writer{b: make([]byte, 0, 200)}
	w.raw([]byte(ctxEpochSeal))
	w.u8(0)
	w.str8(opID)
	w.u64(epoch)
	w.fixed32(content)
	w.fixed32(recipient)
	return w.b
}

// sealEpochSecret seals secret to a leaf public key. HPKE encapsulation
// draws its randomness from crypto/rand (crypto/hpke takes no reader);
// tests make it deterministic with testing/cryptotest.SetGlobalRandom.
func sealEpochSecret(leafKey, info, secret []byte) ([]byte, error) {
	pk, err := kem.NewPublicKey(leafKey)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf key: %v", ErrBadKey, err)
	}
	ct, err := hpke.Seal(pk, hpkeKDF, hpkeAEAD, info, secret)
	if err != nil {
		return nil, fmt.Errorf("hpke seal: %w", err)
	}
	if len(ct) != SealedSecretSize {
		return nil, fmt.Errorf("%w: sealed size %d", ErrSealedSecrets, len(ct))
	}
	return ct, nil
}

func openEpochSecret(priv hpke.PrivateKey, info, sealed []byte) ([]byte, error) {
	pt, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil || len(pt) != EpochSecretSize {
		zero(pt)
		return nil, fmt.Errorf("%w: epoch secret", ErrDecrypt)
	}
	return pt, nil
}

// epochLabel builds an HKDF-Expand info string: label || 0x00 ||
// len(opID) || opID || epoch (u64) || epoch head || extra.
func epochLabel(label, opID string, epoch uint64, head [32]byte, extra []byte) string {
	w := &writer{b: make([]byte, 0, 160)}
	w.raw([]byte(label))
	w.u8(0)
	w.str8(opID)
	w.u64(epoch)
	w.fixed32(head)
	w.raw(extra)
	return string(w.b)
}

// deriveEpoch runs the epoch key schedule:
//
//	prk      = HKDF-Extract(SHA-256, salt=ctxEpochPRK, ikm=epoch secret)
//	chain[k] = HKDF-Expand(prk, epochLabel(ctxChainInit, ..., k), 32) for every member key k
//	auth     = HKDF-Expand(prk, epochLabel(ctxEpochAuth, ...), 32)
//
// The caller zeroes the epoch secret afterwards.
func deriveEpoch(secret []byte, r *Roster) (chains [][32]byte, auth [32]byte, err error) {
	prk, err := hkdf.Extract(sha256.New, secret, []byte(ctxEpochPRK))
	if err != nil {
		return nil, auth, err
	}
	defer zero(prk)
	chains = make([][32]byte, len(r.Members))
	for i, m := range r.Members {
		ck, err := hkdf.Expand(sha256.New, prk, epochLabel(ctxChainInit, r.OpID, r.Epoch, r.Head, m.Key[:]), 32)
		if err != nil {
			return nil, auth, err
		}
		copy(chains[i][:], ck)
		zero(ck)
	}
	a, err := hkdf.Expand(sha256.New, prk, epochLabel(ctxEpochAuth, r.OpID, r.Epoch, r.Head, nil), 32)
	if err != nil {
		return nil, auth, err
	}
	copy(auth[:], a)
	return chains, auth, nil
}
