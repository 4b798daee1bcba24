package crypto

import (
	"bytes"
	"crypto/sha512"
	"strconv"
	"strings"
)

// FingerprintGroups is the number of 5-digit groups in a single-identity
// fingerprint; a safety number has twice as many.
const FingerprintGroups = 6

// fingerprintDigits returns 30 decimal digits derived from the key:
// SHA-512(ctxFingerprint || 0x00 || key); each 5-byte chunk of the first 30
// bytes, read big-endian, is reduced mod 100000 (bias < 2^-23 per group).
func fingerprintDigits(pub [32]byte) []byte {
	h := sha512.New()
	h.Write([]byte(ctxFingerprint))
	h.Write([]byte{0})
	h.Write(pub[:])
	sum := h.Sum(nil)
	out := make([]byte, 0, 5*FingerprintGroups)
	for i := 0; i < FingerprintGroups; i++ {
		c := sum[5*i : 5*i+5]
		v := uint64(c[0])<<32 | uint64(c[1])<<24 | uint64(c[2])<<16 | uint64(c[3])<<8 | uint64(c[4])
		s := strconv.FormatUint(v%100000, 10)
		out = append(out, strings.Repeat("0", 5-len(s))...)
		out = append(out, s...)
	}
	return out
}

func groupDigits(d []byte) string {
	var b strings.Builder
	for i := 0; i < len(d); i += 5 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.Write(d[i : i+5])
	}
	return b.String()
}

// Fingerprint returns a single identity's fingerprint: 30 digits in 6 groups
// of 5 ("12345 67890 ..."), derived from its Ed25519 public key.
func Fingerprint(pub [32]byte) string {
	return groupDigits(fingerprintDigits(pub))
}

// SafetyNumber returns the safety number of two identities: both 30-digit
// fingerprints, sorted and concatenated, as 12 groups of 5 digits. It is
// symmetric (SafetyNumber(a, b) == SafetyNumber(b, a)) and each person can
// find their own fingerprint in it.
func SafetyNumber(a, b [32]byte) string {
	da, db := fingerprintDigits(a), fingerprintDigits(b)
	if bytes.Compare(da, db) > 0 {
		da, db = db, da
	}
	return groupDigits(append(da, db...))
}
