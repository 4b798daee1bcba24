package crypto

import (
	"testing"
)

// fuzzFixture is a small operation used to seed and drive the fuzzers.
type fuzzFixture struct {
	w       *world
	env     []byte
	commit  []byte
	preRost *Roster
	file    []byte
	token   []byte
	state   []byte
}

func newFuzzFixture(f *testing.F) *fuzzFixture {
	w := newWorld(f, "op-fuzz", []string{"alice", "bob"}, nil)
	fx := &fuzzFixture{w: w, preRost: w.roster}
	var err error
	fx.commit, err = w.groups["alice"].Commit(w.rng, KeyUpdate(), SetRole(w.key("bob"), RoleCentre))
	if err != nil {
		f.Fatal(err)
	}
	fx.env = w.seal("alice", "fuzz me")
	fx.file, err = EncryptIdentity(detRand("fuzz"), w.ids["bob"], []byte("pw"), cheapKDF)
	if err != nil {
		f.Fatal(err)
	}
	fx.token = w.ids["bob"].Token().Marshal()
	fx.state = save(f, w.groups["bob"])
	return fx
}

func FuzzEnvelope(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.env)
	f.Add(fx.env[:EnvelopeHeaderSize])
	f.Add([]byte{})
	bad := append([]byte(nil), fx.env...)
	bad[10] ^= 1
	f.Add(bad)
	bob := fx.w.groups["bob"]
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseEnvelopeHeader(b)
		_, _, _ = VerifyEnvelope(fx.preRost, b)
		m, err := bob.Open(b)
		if err == nil && string(m.Plaintext) != "fuzz me" {
			t.Fatalf("forged envelope opened: %q", m.Plaintext)
		}
	})
}

func FuzzCommit(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.commit)
	f.Add(fx.w.chain[0])
	f.Add([]byte{1, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err == nil {
			_ = c.Hash()
			if string(c.Encode()) != string(b) {
				t.Fatal("decode/encode not canonical")
			}
		}
		if _, next, err := CheckCommit(fx.preRost, b); err == nil && next.Epoch != 1 {
			t.Fatal("bad epoch accepted")
		}
		_, _, _ = CheckCommit(nil, b)
	})
}

func FuzzIdentityFile(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.file, []byte("pw"))
	f.Add(fx.file[:20], []byte("pw"))
	f.Add([]byte("LIDF"), []byte{})
	f.Fuzz(func(t *testing.T, b, pass []byte) {
		p, err := ParseIdentityFileHeader(b)
		if err != nil {
			return
		}
		// Keep fuzzing fast: only derive keys for cheap parameters. The
		// bounds themselves are checked by ParseIdentityFileHeader above.
		if p.Memory > 256 || p.Time > 2 {
			return
		}
		_, _ = DecryptIdentity(b, pass)
	})
}

func FuzzToken(f *testing.F) {
	fx := newFuzzFixture(f)
	tok, _ := ParseToken(fx.token)
	f.Add(fx.token, tok.String())
	f.Add([]byte{1}, TokenPrefix+"AQ")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		if tk, err := ParseToken(b); err == nil && string(tk.Marshal()) != string(b) {
			t.Fatal("token not canonical")
		}
		if tk, err := ParseTokenString(s); err == nil {
			if _, err := ParseTokenString(tk.String()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzGroupState(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.state)
	f.Add(fx.state[:40])
	bob := fx.w.ids["bob"]
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(bob, b)
		if err != nil {
			return
		}
		_, _ = g.Open(fx.env)
		_, _ = g.Seal([]byte("x"), LogHead{})
		_, _ = g.MarshalBinary()
	})
}
