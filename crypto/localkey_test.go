package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"testing"
)

func TestLocalStateKey(t *testing.T) {
	a, b := mustIdentity(t, "alice"), mustIdentity(t, "bob")
	k1, k2 := a.LocalStateKey("ops"), a.LocalStateKey("ops")
	if k1 != k2 {
		t.Fatal("not deterministic")
	}
	if k1 == a.LocalStateKey("other") {
		t.Fatal("purposes not separated")
	}
	if k1 == b.LocalStateKey("ops") {
		t.Fatal("identities not separated")
	}
	// Re-derive from the documented construction.
	want, err := hkdf.Key(sha256.New, a.signSeed[:], []byte("liaison/v1/local-state"), "ops", 32)
	if err != nil || !bytes.Equal(want, k1[:]) {
		t.Fatalf("construction differs: %x vs %x (%v)", want, k1, err)
	}
	// Not equal to the raw seeds.
	if bytes.Equal(k1[:], a.signSeed[:]) || bytes.Equal(k1[:], a.hpkeSeed[:]) {
		t.Fatal("key equals a seed")
	}
	// Survives an identity-file round trip.
	file, err := EncryptIdentity(bytes.NewReader(make([]byte, 64)), a, []byte("pw"), KDFParams{Time: 1, Memory: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := DecryptIdentity(file, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if a2.LocalStateKey("ops") != k1 {
		t.Fatal("key changed across identity file")
	}
}
