package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// LocalStateKeySize is the size of a key returned by Identity.LocalStateKey.
const LocalStateKeySize = 32

// LocalStateKey derives a 32-byte symmetric key for encrypting this
// identity's local state at rest (for example saved Group state and message
// history), separate for every purpose string:
//
//	HKDF-SHA256(ikm = Ed25519 seed, salt = "liaison/v1/local-state", info = purpose)
//
// The key is never sent anywhere; it only lets the holder of the identity
// file (and its passphrase) read the files a client wrote for it. Different
// purposes give independent keys.
func (id *Identity) LocalStateKey(purpose string) [LocalStateKeySize]byte {
	k, err := hkdf.Key(sha256.New, id.signSeed[:], []byte(ctxLocalState), purpose, LocalStateKeySize)
	if err != nil {
		// Only possible for an output longer than 255 hash blocks.
		panic("crypto: local state key: " + err.Error())
	}
	var out [LocalStateKeySize]byte
	copy(out[:], k)
	zero(k)
	return out
}
