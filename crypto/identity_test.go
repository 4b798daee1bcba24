package crypto

import (
	"errors"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	id := mustIdentity(t, "Alice Ørsted")
	tok := id.Token()
	s := tok.String()
	if !strings.HasPrefix(s, TokenPrefix) || len(s) > MaxTokenTextSize {
		t.Fatalf("token text %d bytes: %.40s", len(s), s)
	}
	got, err := ParseTokenString("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.SigningKey != id.PublicKey() || got.Name != "Alice Ørsted" || string(got.HPKEKey) != string(tok.HPKEKey) {
		t.Fatal("token fields differ")
	}
	if got.Fingerprint() != id.Fingerprint() {
		t.Fatal("fingerprint differs")
	}
	// Every single-bit change of the binary token is rejected.
	b := tok.Marshal()
	for i := range b {
		for bit := 0; bit < 8; bit += 3 {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << bit
			if _, err := ParseToken(c); err == nil {
				t.Fatalf("flip byte %d bit %d accepted", i, bit)
			}
		}
	}
	if _, err := ParseToken(append(b, 0)); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := ParseToken(b[:len(b)-1]); err == nil {
		t.Fatal("truncated accepted")
	}
	for _, bad := range []string{"", "liaison-id1:", "liaison-id2:" + s[len(TokenPrefix):], s + "=", s[:len(s)-1] + "!", strings.Repeat("A", MaxTokenTextSize+1)} {
		if _, err := ParseTokenString(bad); err == nil {
			t.Fatalf("accepted %.30q", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{"", strings.Repeat("a", MaxNameLen+1), "a\x00b", "bad\xff", "tab\there", "\u200bok?"} {
		_, err := NewIdentity(detRand("n"), n)
		if n == "\u200bok?" {
			continue // format characters are allowed; only controls are refused
		}
		if !errors.Is(err, ErrBadName) {
			t.Errorf("name %q: %v", n, err)
		}
	}
	if _, err := NewIdentity(detRand("n"), strings.Repeat("é", MaxNameLen/2)); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityFile(t *testing.T) {
	id := mustIdentity(t, "bob")
	f, err := EncryptIdentity(detRand("file"), id, []byte("correct horse"), cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecryptIdentity(f, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if got.PublicKey() != id.PublicKey() || got.Name() != "bob" || got.Token().String() != id.Token().String() {
		t.Fatal("identity differs after round trip")
	}
	if _, err := DecryptIdentity(f, []byte("wrong")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	for i := range f {
		c := append([]byte(nil), f...)
		c[i] ^= 1 << (i % 8)
		if _, err := DecryptIdentity(c, []byte("correct horse")); err == nil {
			t.Fatalf("flip byte %d accepted", i)
		}
	}
	// Hostile parameters are refused before any key derivation.
	for _, p := range []KDFParams{{16, 1<<20 + 1, 1}, {17, 64, 1}, {1, 64, 0}, {1, 64, 17}, {1, 7, 1}, {0, 64, 1}, {1, 0xffffffff, 4}} {
		h := append([]byte(nil), f...)
		h[6], h[7], h[8], h[9] = byte(p.Time>>24), byte(p.Time>>16), byte(p.Time>>8), byte(p.Time)
		h[10], h[11], h[12], h[13] = byte(p.Memory>>24), byte(p.Memory>>16), byte(p.Memory>>8), byte(p.Memory)
		h[14] = p.Threads
		if _, err := DecryptIdentity(h, []byte("x")); !errors.Is(err, ErrKDFParams) {
			t.Fatalf("params %+v: %v", p, err)
		}
	}
	if _, err := EncryptIdentity(detRand("f"), id, nil, KDFParams{Time: 1, Memory: 1 << 21, Threads: 1}); !errors.Is(err, ErrKDFParams) {
		t.Fatalf("encrypt with huge params: %v", err)
	}
	if _, err := DecryptIdentity(append(f, 0), []byte("correct horse")); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestSafetyNumber(t *testing.T) {
	a, b := mustIdentity(t, "a"), mustIdentity(t, "b")
	sab := SafetyNumber(a.PublicKey(), b.PublicKey())
	if sab != SafetyNumber(b.PublicKey(), a.PublicKey()) {
		t.Fatal("not symmetric")
	}
	groups := strings.Split(sab, " ")
	if len(groups) != 2*FingerprintGroups {
		t.Fatalf("%d groups", len(groups))
	}
	for _, g := range groups {
		if len(g) != 5 || strings.Trim(g, "0123456789") != "" {
			t.Fatalf("bad group %q", g)
		}
	}
	fa, fb := a.Fingerprint(), b.Fingerprint()
	if !strings.Contains(sab, fa) || !strings.Contains(sab, fb) || fa == fb {
		t.Fatal("fingerprints not in safety number")
	}
	c := mustIdentity(t, "c")
	if SafetyNumber(a.PublicKey(), c.PublicKey()) == sab {
		t.Fatal("different pairs, same number")
	}
}
