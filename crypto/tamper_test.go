package crypto

import (
	"testing"
)

// Every single-bit change of an envelope, anywhere, is rejected, and
// rejection leaves the receiver's state intact.
func TestEnvelopeBitFlips(t *testing.T) {
	w := newWorld(t, "op-flip", []string{"alice", "bob"}, nil)
	env := w.seal("alice", "attack at dawn")
	bob := w.groups["bob"]
	for i := range env {
		for bit := 0; bit < 8; bit++ {
			c := append([]byte(nil), env...)
			c[i] ^= 1 << bit
			if m, err := bob.Open(c); err == nil {
				t.Fatalf("flip byte %d bit %d accepted: %q", i, bit, m.Plaintext)
			}
		}
	}
	for _, c := range [][]byte{env[:len(env)-1], append(append([]byte(nil), env...), 0), env[1:], nil} {
		if _, err := bob.Open(c); err == nil {
			t.Fatal("length change accepted")
		}
	}
	mustOpen(t, bob, env, "attack at dawn")
}

// Every single-bit change of a commit (genesis, add, key update) is rejected
// by the relay check and by clients.
func TestCommitBitFlips(t *testing.T) {
	w := newWorld(t, "op-cflip", []string{"alice", "bob"}, nil)
	genesis := w.chain[0]
	r0 := w.roster
	w.add("alice", "carol", RoleCentre)
	addCommit := w.chain[1]
	r1 := w.roster
	upd := w.groups["bob"].mustCommit(t, w, KeyUpdate())

	check := func(name string, prev *Roster, b []byte, g *Group) {
		t.Helper()
		for i := range b {
			bits := []int{i % 8}
			if i < 160 || len(b)-i <= 64 {
				bits = []int{0, 1, 2, 3, 4, 5, 6, 7}
			}
			for _, bit := range bits {
				c := append([]byte(nil), b...)
				c[i] ^= 1 << bit
				if _, _, err := CheckCommit(prev, c); err == nil {
					t.Fatalf("%s: flip byte %d bit %d accepted by relay", name, i, bit)
				}
				if g != nil && i%7 == 0 {
					if err := g.ProcessCommit(c); err == nil {
						t.Fatalf("%s: flip byte %d bit %d accepted by client", name, i, bit)
					}
				}
			}
		}
		if _, _, err := CheckCommit(prev, b); err != nil {
			t.Fatalf("%s: original rejected: %v", name, err)
		}
	}
	check("genesis", nil, genesis, nil)
	check("add", r0, addCommit, nil)
	check("key update", r1, upd, w.groups["alice"])
	if err := w.groups["alice"].ProcessCommit(upd); err != nil {
		t.Fatalf("original after flips: %v", err)
	}
}

// mustCommit creates a commit without delivering it.
func (g *Group) mustCommit(t *testing.T, w *world, changes ...Change) []byte {
	t.Helper()
	b, err := g.Commit(w.rng, changes...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
