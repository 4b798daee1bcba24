package crypto

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

func TestMessaging(t *testing.T) {
	w := newWorld(t, "op-basic", []string{"alice", "bob", "carol"}, map[string]Role{"bob": RoleCentre})
	for _, from := range []string{"alice", "bob", "carol"} {
		for i := 0; i < 3; i++ {
			text := fmt.Sprintf("%s #%d", from, i)
			env := w.seal(from, text)
			for to, g := range w.groups {
				if to == from {
					if _, err := g.Open(env); !errors.Is(err, ErrOwnEnvelope) {
						t.Fatalf("own envelope: %v", err)
					}
					continue
				}
				m := mustOpen(t, g, env, text)
				if m.Sender != w.key(from) || m.SenderName != from || m.Index != uint32(i) || m.Missed != 0 || m.Late {
					t.Fatalf("message fields %+v", m)
				}
			}
		}
	}
	a := w.groups["alice"].EpochAuthenticator()
	for n, g := range w.groups {
		if g.EpochAuthenticator() != a || g.Head() != w.roster.Head || g.Epoch() != 0 {
			t.Fatalf("%s disagrees on epoch", n)
		}
	}
	// Roster changes and key updates by everyone keep everyone in sync.
	w.commit("alice", SetRole(w.key("carol"), RoleAdmin))
	w.commit("bob", KeyUpdate())
	w.commit("carol", KeyUpdate(), RemoveMember(w.key("alice")))
	if _, ok := w.roster.Member(w.key("alice")); ok {
		t.Fatal("alice still in roster")
	}
	env := w.seal("bob", "after")
	mustOpen(t, w.groups["carol"], env, "after")
	if w.groups["carol"].Epoch() != 3 || w.roster.Epoch != 3 {
		t.Fatal("epoch")
	}
}

func TestPaddingAndOverhead(t *testing.T) {
	w := newWorld(t, "op-pad", []string{"a", "b"}, nil)
	for _, n := range []int{0, 1, 255, 256, 1000, 1024, 5000, MaxPlaintext} {
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i) | 0x80
		}
		env, err := w.groups["a"].Seal(pt, LogHead{})
		if err != nil {
			t.Fatal(err)
		}
		padded := MinPadded
		for padded < n+1 {
			padded <<= 1
		}
		if over := len(env) - padded; over != EnvelopeOverhead || over > 128 {
			t.Fatalf("overhead %d", over)
		}
		m, err := w.groups["b"].Open(env)
		if err != nil || string(m.Plaintext) != string(pt) {
			t.Fatalf("size %d: %v", n, err)
		}
	}
	t.Logf("envelope overhead over padded plaintext: %d bytes", EnvelopeOverhead)
	if _, err := w.groups["a"].Seal(make([]byte, MaxPlaintext+1), LogHead{}); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

// A removed member, with all its saved state, decrypts nothing sent after
// its removal.
func TestRemovedMemberReadsNothingAfter(t *testing.T) {
	w := newWorld(t, "op-remove", []string{"alice", "bob", "carol"}, nil)
	before := w.seal("bob", "before removal")
	mustOpen(t, w.groups["carol"], before, "before removal")
	stolen := save(t, w.groups["carol"])
	carol := w.groups["carol"]
	rm := w.commit("alice", RemoveMember(w.key("carol")))
	if carol.IsMember() {
		t.Fatal("carol still member")
	}
	after := [][]byte{w.seal("bob", "secret 1"), w.seal("alice", "secret 2")}
	w.commit("bob", KeyUpdate())
	after = append(after, w.seal("bob", "secret 3"))

	// Carol's live state, her saved state, and her saved state fed the
	// whole chain.
	cannotRead(t, carol, after...)
	old := restore(t, w.ids["carol"], stolen)
	cannotRead(t, old, after...)
	if err := old.ProcessCommit(rm); !errors.Is(err, ErrNotMember) {
		t.Fatalf("process removal: %v", err)
	}
	cannotRead(t, old, after...)
	if _, err := JoinGroup(w.ids["carol"], w.chain); !errors.Is(err, ErrNotMember) {
		t.Fatalf("rejoin: %v", err)
	}
	// No sealed secret in the removal commit opens with any key she had.
	c, _ := DecodeCommit(rm)
	for _, seed := range [][SeedSize]byte{old.leafSeed, w.ids["carol"].hpkeSeed} {
		priv, _ := kem.NewPrivateKey(seed[:])
		for i, s := range c.Sealed {
			for _, k := range w.roster.Members {
				if _, err := openEpochSecret(priv, sealInfo(c.OpID, c.Epoch, c.ContentHash(), k.Key), s); err == nil {
					t.Fatalf("sealed %d opened by removed member", i)
				}
			}
		}
	}
	// She can still read late messages of the epoch she was in.
	late := restore(t, w.ids["carol"], stolen)
	if _, err := late.Open(before); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of old message: %v", err)
	}
}

// A member added at epoch e decrypts nothing from before e.
func TestNewMemberReadsNothingBefore(t *testing.T) {
	w := newWorld(t, "op-add", []string{"alice", "bob"}, nil)
	old := []([]byte){w.seal("alice", "old 1"), w.seal("bob", "old 2")}
	w.commit("alice", KeyUpdate())
	old = append(old, w.seal("alice", "old 3"))
	w.add("alice", "dave", RoleCentre)
	cannotRead(t, w.groups["dave"], old...)
	for _, env := range old {
		if _, err := w.groups["dave"].Open(env); !errors.Is(err, ErrUnknownEpoch) {
			t.Fatalf("old envelope: %v", err)
		}
	}
	mustOpen(t, w.groups["dave"], w.seal("bob", "welcome"), "welcome")
}

// Forward secrecy: state stolen now decrypts nothing from epochs before the
// member's last key update.
func TestForwardSecrecy(t *testing.T) {
	w := newWorld(t, "op-fs", []string{"alice", "bob", "carol"}, nil)
	var past [][]byte
	past = append(past, w.seal("alice", "e0"))
	w.commit("alice", SetRole(w.key("carol"), RoleCentre))
	past = append(past, w.seal("alice", "e1"), w.seal("carol", "e1b"))
	// Bob has not read these yet (offline) when he commits his key update.
	w.commit("bob", KeyUpdate())
	stolen := save(t, w.groups["bob"])
	thief := restore(t, w.ids["bob"], stolen)
	cannotRead(t, thief, past...)
	cannotRead(t, w.groups["bob"], past...)
	// The current leaf key opens no sealed secret of the earlier commits.
	priv, _ := kem.NewPrivateKey(thief.leafSeed[:])
	for i, b := range w.chain[:len(w.chain)-1] {
		c, _ := DecodeCommit(b)
		for _, s := range c.Sealed {
			if _, err := openEpochSecret(priv, sealInfo(c.OpID, c.Epoch, c.ContentHash(), w.key("bob")), s); err == nil {
				t.Fatalf("commit %d secret opened with current leaf", i)
			}
		}
	}
	// Alice, who did not update, still reads late messages of epoch 1.
	mustOpen(t, w.groups["alice"], past[2], "e1b")
}

// Post-compromise security: state stolen at epoch e decrypts nothing after
// the member's next key update; saved state from before a key update cannot
// decrypt later messages.
func TestPostCompromiseSecurity(t *testing.T) {
	w := newWorld(t, "op-pcs", []string{"alice", "bob", "carol"}, nil)
	stolen := save(t, w.groups["bob"])
	upd := w.commit("bob", KeyUpdate())
	var later [][]byte
	later = append(later, w.seal("alice", "after 1"), w.seal("bob", "after 2"))
	rc := w.commit("alice", SetRole(w.key("carol"), RoleCentre))
	later = append(later, w.seal("carol", "after 3"))
	w.commit("carol", KeyUpdate())
	later = append(later, w.seal("alice", "after 4"))

	thief := restore(t, w.ids["bob"], stolen)
	cannotRead(t, thief, later...)
	if err := thief.ProcessCommit(upd); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("thief processing the key update: %v", err)
	}
	if err := thief.ProcessCommit(rc); err == nil {
		t.Fatal("thief followed the chain")
	}
	cannotRead(t, thief, later...)
	// Even with the identity (signing key and initial HPKE key) and the
	// chain, joining fails because bob's leaf is no longer the initial one.
	if _, err := JoinGroup(w.ids["bob"], w.chain); err == nil {
		t.Fatal("join with stolen identity succeeded")
	}
	// The real bob reads everything.
	mustOpen(t, w.groups["bob"], later[3], "after 4")
}

// Every member present in an epoch decrypts every message of it, in any
// delivery order, after being offline; gaps and replays are reported.
func TestShuffledDelivery(t *testing.T) {
	w := newWorld(t, "op-shuffle", []string{"alice", "bob", "carol", "dave"}, nil)
	dave := w.groups["dave"]
	delete(w.groups, "dave") // offline
	type sent struct {
		env  []byte
		text string
	}
	var msgs []sent
	var commits [][]byte
	for ep := 0; ep < 3; ep++ {
		for i := 0; i < 15; i++ {
			for _, from := range []string{"alice", "bob", "carol"} {
				text := fmt.Sprintf("%s e%d #%d", from, ep, i)
				msgs = append(msgs, sent{w.seal(from, text), text})
			}
		}
		if ep < 2 {
			commits = append(commits, w.commit("alice", KeyUpdate()))
		}
	}
	// Dave comes back: processes the commits (log order), then gets all
	// messages of all three epochs shuffled.
	for _, c := range commits {
		if err := dave.ProcessCommit(c); err != nil {
			t.Fatal(err)
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	late, missed := 0, 0
	for _, m := range msgs {
		got := mustOpen(t, dave, m.env, m.text)
		if got.Late {
			late++
		}
		missed += int(got.Missed)
	}
	if late != missed || late == 0 {
		t.Fatalf("late %d, missed %d", late, missed)
	}
	if gaps := dave.Gaps(); len(gaps) != 0 {
		t.Fatalf("gaps remain: %v", gaps)
	}
	for _, m := range msgs {
		var re *ReplayError
		if _, err := dave.Open(m.env); !errors.As(err, &re) || re.Sender == ([32]byte{}) {
			t.Fatalf("replay not reported: %v", err)
		}
	}
}

func TestGapDetection(t *testing.T) {
	w := newWorld(t, "op-gap", []string{"alice", "bob"}, nil)
	e := make([][]byte, 6)
	for i := range e {
		e[i] = w.seal("alice", fmt.Sprint(i))
	}
	bob := w.groups["bob"]
	mustOpen(t, bob, e[0], "0")
	m := mustOpen(t, bob, e[4], "4")
	if m.Missed != 3 || m.Late {
		t.Fatalf("missed %d late %v", m.Missed, m.Late)
	}
	gaps := bob.Gaps()
	if len(gaps) != 1 || fmt.Sprint(gaps[0].Indices) != "[1 2 3]" || gaps[0].Sender != w.key("alice") {
		t.Fatalf("gaps %+v", gaps)
	}
	m = mustOpen(t, bob, e[2], "2")
	if !m.Late || m.Missed != 0 {
		t.Fatal("late not flagged")
	}
	var re *ReplayError
	if _, err := bob.Open(e[2]); !errors.As(err, &re) || re.Index != 2 || re.Epoch != 0 || re.Sender != w.key("alice") {
		t.Fatalf("replay: %v", err)
	}
	if _, err := bob.Open(e[4]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// Too far ahead.
	g := w.groups["alice"]
	skipSend := func(k int) {
		es := g.epochs[len(g.epochs)-1]
		for range k {
			step(&es.sendCK)
			es.sendNext++
		}
	}
	skipSend(MaxSkip + 10) // alice's index is now 6+MaxSkip+10; bob expects 5
	far := w.seal("alice", "far")
	if _, err := bob.Open(far); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("far: %v", err)
	}
	// The window is bounded: skipping MaxSkip keeps at most MaxSkip keys.
	// Build a chain where the jump is exactly MaxSkip.
	w2 := newWorld(t, "op-gap2", []string{"alice", "bob"}, nil)
	g, bob = w2.groups["alice"], w2.groups["bob"]
	mustOpen(t, bob, w2.seal("alice", "0"), "0")
	w2.seal("alice", "lost")
	mustOpen(t, bob, w2.seal("alice", "2"), "2") // one skipped key (index 1)
	skipSend(MaxSkip)
	m = mustOpen(t, bob, w2.seal("alice", "x"), "x")
	if m.Missed != MaxSkip {
		t.Fatalf("missed %d", m.Missed)
	}
	w = w2
	if n := len(bob.epochs[0].recv[bob.roster.Index(w.key("alice"))].skipped); n != MaxSkip {
		t.Fatalf("%d skipped keys kept", n)
	}
}

// Replays within and across operations and epochs are rejected.
func TestReplays(t *testing.T) {
	w1 := newWorld(t, "op-one", []string{"alice", "bob"}, nil)
	w2 := newWorld(t, "op-two", []string{"alice", "bob"}, nil) // same identities' seeds, other op
	env := w1.seal("alice", "hello")
	mustOpen(t, w1.groups["bob"], env, "hello")
	if _, err := w1.groups["bob"].Open(env); !errors.Is(err, ErrReplay) {
		t.Fatalf("same epoch replay: %v", err)
	}
	// Across operations: same people (same keys), same epoch and index.
	if _, err := w2.groups["bob"].Open(env); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-op: %v", err)
	}
	// Across epochs: after a commit the old envelope is still a replay; a
	// fresh one from the old epoch, never seen, is accepted once.
	unseen := w1.seal("alice", "late")
	c1 := w1.commit("alice", KeyUpdate())
	if _, err := w1.groups["bob"].Open(env); !errors.Is(err, ErrReplay) {
		t.Fatalf("cross-epoch replay: %v", err)
	}
	mustOpen(t, w1.groups["bob"], unseen, "late")
	if _, err := w1.groups["bob"].Open(unseen); !errors.Is(err, ErrReplay) {
		t.Fatal("late replay accepted")
	}
	// Commits: replayed in the same op, or into another op.
	if err := w1.groups["alice"].ProcessCommit(c1); !errors.Is(err, ErrNotHead) {
		t.Fatalf("commit replay: %v", err)
	}
	if _, _, err := CheckCommit(w1.roster, c1); !errors.Is(err, ErrNotHead) {
		t.Fatalf("relay commit replay: %v", err)
	}
	if err := w2.groups["alice"].ProcessCommit(c1); !errors.Is(err, ErrWrongOperation) {
		t.Fatalf("cross-op commit: %v", err)
	}
	if err := w2.groups["alice"].ProcessCommit(w1.chain[0]); !errors.Is(err, ErrWrongOperation) {
		t.Fatalf("cross-op genesis: %v", err)
	}
}

// A member injected by the relay (unsigned, self-signed, or signed by a
// non-admin) is refused and receives no keys.
func TestInjectedMemberRefused(t *testing.T) {
	w := newWorld(t, "op-inject", []string{"alice", "bob"}, nil) // bob is an officer
	mallory := mustIdentity(t, "mallory")
	forge := func(signer *Identity, sign bool) []byte {
		next, err := w.roster.applyChanges([]Change{AddMember(mallory.Token(), RoleAdmin)}, signer.PublicKey(), true)
		if err != nil {
			t.Fatal(err)
		}
		c := &Commit{OpID: w.roster.OpID, Epoch: w.roster.Epoch + 1, Prev: w.roster.Head, Signer: signer.PublicKey(),
			Changes: []Change{AddMember(mallory.Token(), RoleAdmin)}}
		if err := sealAndSign(detRand("forge"), signer, c, next); err != nil {
			t.Fatal(err)
		}
		if !sign {
			c.Signature = [64]byte{}
		}
		return c.Encode()
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"by bob (officer)", forge(w.ids["bob"], true), ErrNotAdmin},
		{"by mallory", forge(mallory, true), ErrUnknownSigner},
		{"unsigned, claims alice", forge(w.ids["alice"], false), ErrBadSignature},
	}
	// Alice's key signing over a commit the relay altered is the same as unsigned.
	for _, tc := range cases {
		if _, _, err := CheckCommit(w.roster, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: relay check: %v", tc.name, err)
		}
		for n, g := range w.groups {
			if err := g.ProcessCommit(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("%s: %s: %v", tc.name, n, err)
			}
		}
		if _, err := JoinGroup(mallory, append(append([][]byte{}, w.chain...), tc.b)); err == nil {
			t.Errorf("%s: mallory joined", tc.name)
		}
	}
	// A non-admin may not add even with a key update, nor update others.
	if _, err := w.groups["bob"].Commit(detRand("x"), KeyUpdate(), AddMember(mallory.Token(), RoleOfficer)); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("bob add: %v", err)
	}
	// Next legitimate epoch: sealed only to alice and bob.
	b := w.commit("bob", KeyUpdate())
	c, _ := DecodeCommit(b)
	if len(c.Sealed) != 2 || w.roster.Index(mallory.PublicKey()) >= 0 {
		t.Fatal("mallory in roster")
	}
	priv, _ := kem.NewPrivateKey(mallory.hpkeSeed[:])
	for _, s := range c.Sealed {
		if _, err := openEpochSecret(priv, sealInfo(c.OpID, c.Epoch, c.ContentHash(), mallory.PublicKey()), s); err == nil {
			t.Fatal("mallory opened a secret")
		}
	}
	cannotRead(t, &Group{id: mallory}, w.seal("alice", "x"))
}

func TestRosterRules(t *testing.T) {
	w := newWorld(t, "op-rules", []string{"alice", "bob"}, nil)
	a := w.groups["alice"]
	zed := mustIdentity(t, "zed")
	bad := []struct {
		name    string
		changes []Change
		want    error
	}{
		{"empty", nil, ErrBadOp},
		{"add present", []Change{AddMember(w.ids["bob"].Token(), RoleCentre)}, ErrBadOp},
		{"remove absent", []Change{RemoveMember(zed.PublicKey())}, ErrBadOp},
		{"role absent", []Change{SetRole(zed.PublicKey(), RoleAdmin)}, ErrBadOp},
		{"bad role", []Change{SetRole(w.key("bob"), 9)}, ErrBadOp},
		{"twice", []Change{SetRole(w.key("bob"), RoleAdmin), RemoveMember(w.key("bob"))}, ErrBadOp},
		{"no admin left", []Change{RemoveMember(w.key("alice"))}, ErrBadOp},
		{"demote last admin", []Change{SetRole(w.key("alice"), RoleOfficer)}, ErrBadOp},
		{"two key updates", []Change{KeyUpdate(), KeyUpdate()}, ErrBadOp},
	}
	for _, tc := range bad {
		if _, err := a.Commit(detRand("r"), tc.changes...); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A key update naming another member's leaf is refused by verifiers.
	next, _ := w.roster.applyChanges([]Change{SetRole(w.key("bob"), RoleCentre)}, w.key("alice"), true)
	c := &Commit{OpID: w.roster.OpID, Epoch: 1, Prev: w.roster.Head, Signer: w.key("alice"),
		Changes: []Change{{Kind: ChangeKeyUpdate, Member: w.key("bob"), LeafKey: w.ids["alice"].Token().HPKEKey}}}
	if err := sealAndSign(detRand("r"), w.ids["alice"], c, next); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckCommit(w.roster, c.Encode()); !errors.Is(err, ErrForeignKeyUpdate) {
		t.Fatalf("foreign key update: %v", err)
	}
	// Wrong epoch number, correctly signed.
	c = &Commit{OpID: w.roster.OpID, Epoch: 5, Prev: w.roster.Head, Signer: w.key("alice"), Changes: []Change{SetRole(w.key("bob"), RoleCentre)}}
	if err := sealAndSign(detRand("r"), w.ids["alice"], c, next); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckCommit(w.roster, c.Encode()); !errors.Is(err, ErrBadEpoch) {
		t.Fatalf("epoch: %v", err)
	}
	// Missing sealed secret.
	c.Epoch = 1
	c.Sealed = c.Sealed[:1]
	c.sign(w.ids["alice"].sign)
	if _, _, err := CheckCommit(w.roster, c.Encode()); !errors.Is(err, ErrSealedSecrets) {
		t.Fatalf("sealed: %v", err)
	}
	// VerifyChain over the log equals the relay's incremental view.
	w.commit("alice", AddMember(zed.Token(), RoleCentre))
	w.commit("alice", SetRole(zed.PublicKey(), RoleAdmin), RemoveMember(w.key("alice")))
	var cs []*Commit
	for _, b := range w.chain {
		c, err := DecodeCommit(b)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	r, err := VerifyChain(cs)
	if err != nil || r.Head != w.roster.Head || r.Epoch != 2 || len(r.Members) != 2 {
		t.Fatalf("VerifyChain: %v", err)
	}
	if m, _ := r.Member(zed.PublicKey()); m.Role != RoleAdmin || m.Name != "zed" {
		t.Fatal("zed role")
	}
	// Out of order chains fail.
	if _, err := VerifyChain([]*Commit{cs[0], cs[2]}); !errors.Is(err, ErrNotHead) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := VerifyChain(cs[1:]); !errors.Is(err, ErrNotGenesis) {
		t.Fatalf("no genesis: %v", err)
	}
	if _, err := VerifyChain(nil); !errors.Is(err, ErrEmptyChain) {
		t.Fatal(err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	w := newWorld(t, "op-state", []string{"alice", "bob"}, nil)
	w.commit("alice", KeyUpdate())
	e1 := w.seal("alice", "one")
	e3 := func() []byte { w.seal("alice", "two"); return w.seal("alice", "three") }()
	mustOpen(t, w.groups["bob"], e3, "three")
	bob := restore(t, w.ids["bob"], save(t, w.groups["bob"]))
	mustOpen(t, bob, e1, "one")
	if _, err := bob.Open(e3); !errors.Is(err, ErrReplay) {
		t.Fatal(err)
	}
	// Pending commit survives a save.
	b, err := w.groups["alice"].Commit(w.rng, KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	alice := restore(t, w.ids["alice"], save(t, w.groups["alice"]))
	if err := alice.ProcessCommit(b); err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalGroup(w.ids["alice"], save(t, bob)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("other identity: %v", err)
	}
	bob.Destroy()
	if _, err := bob.Open(e1); !errors.Is(err, ErrDestroyed) {
		t.Fatal(err)
	}
}
