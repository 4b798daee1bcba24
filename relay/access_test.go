package relay

import (
	"crypto/rand"
	"testing"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// accessFixture is an operation "op" with alice admin, carol centre and
// bob officer, in a memLog, and a conn factory for each identity.
type accessFixture struct {
	log               *memLog
	alice, bob, carol *crypto.Identity
	ga, gb, gc        *crypto.Group
	genesis           []byte
}

func newAccessFixture(t testing.TB) *accessFixture {
	t.Helper()
	f := &accessFixture{log: newMemLog()}
	var err error
	for _, p := range []struct {
		id   **crypto.Identity
		name string
	}{{&f.alice, "alice"}, {&f.bob, "bob"}, {&f.carol, "carol"}} {
		if *p.id, err = crypto.NewIdentity(rand.Reader, p.name); err != nil {
			t.Fatal(err)
		}
	}
	f.ga, f.genesis, err = crypto.NewGroup(rand.Reader, f.alice, "op", []crypto.Invite{
		{Token: f.bob.Token(), Role: crypto.RoleOfficer}, {Token: f.carol.Token(), Role: crypto.RoleCentre}})
	if err != nil {
		t.Fatal(err)
	}
	if f.gb, err = crypto.JoinGroup(f.bob, [][]byte{f.genesis}); err != nil {
		t.Fatal(err)
	}
	if f.gc, err = crypto.JoinGroup(f.carol, [][]byte{f.genesis}); err != nil {
		t.Fatal(err)
	}
	_, r, err := crypto.CheckCommit(nil, f.genesis)
	if err != nil {
		t.Fatal(err)
	}
	f.log.rosters["op"] = r
	return f
}

// connAs returns a conn (not connected) authenticated as id.
func (f *accessFixture) connAs(id *crypto.Identity, open bool) *conn {
	c := &conn{s: &Server{cfg: Config{OpenOps: open}.withDefaults(), log: f.log}}
	if id != nil {
		tok := id.Token()
		c.identity.Store(&ident{key: tok.SigningKey, name: tok.Name})
	}
	return c
}

func (f *accessFixture) seal(t testing.TB, g *crypto.Group) []byte {
	t.Helper()
	env, err := g.Seal([]byte("x"), crypto.LogHead{})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestAccessDecisions(t *testing.T) {
	f := newAccessFixture(t)
	mallory, _ := crypto.NewIdentity(rand.Reader, "mallory")
	pub := func(kind wire.Kind, entry []byte) *wire.Publish {
		return &wire.Publish{Op: "op", Kind: kind, Envelope: entry}
	}
	ku, err := f.gb.Commit(rand.Reader, crypto.KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	rm, err := f.ga.Commit(rand.Reader, crypto.RemoveMember(f.carol.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	_, otherGenesis, err := crypto.NewGroup(rand.Reader, f.bob, "op2", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		who    *crypto.Identity
		open   bool
		p      *wire.Publish
		reason string // "" allowed
	}{
		{"member message", f.bob, false, pub(wire.KindMessage, f.seal(t, f.gb)), ""},
		{"non-member message", mallory, false, pub(wire.KindMessage, f.seal(t, f.gb)), refusedNotMember},
		{"another member's envelope", f.carol, false, pub(wire.KindMessage, f.seal(t, f.gb)), refusedSender},
		{"not an envelope", f.bob, false, pub(wire.KindMessage, []byte("raw")), refusedMalformed},
		{"officer task", f.bob, false, pub(wire.KindTask, f.seal(t, f.gb)), refusedTaskRole},
		{"centre task", f.carol, false, pub(wire.KindTask, f.seal(t, f.gc)), ""},
		{"admin task", f.alice, false, pub(wire.KindTask, f.seal(t, f.ga)), ""},
		{"officer key update", f.bob, false, pub(wire.KindCommit, ku), ""},
		{"admin commit", f.alice, false, pub(wire.KindCommit, rm), ""},
		{"admin commit relayed by officer", f.bob, false, pub(wire.KindCommit, rm), refusedSender},
		{"officer roster change", f.bob, false, &wire.Publish{Op: "op", Kind: wire.KindCommit, Envelope: otherGenesis}, refusedCommitRole},
		{"garbage commit", f.alice, false, pub(wire.KindCommit, []byte("x")), refusedMalformed},
		{"no roster raw", f.bob, false, &wire.Publish{Op: "op2", Envelope: []byte("x")}, refusedNoRoster},
		{"no roster raw, open", f.bob, true, &wire.Publish{Op: "op2", Envelope: []byte("x")}, ""},
		{"no roster genesis by signer", f.bob, false, &wire.Publish{Op: "op2", Kind: wire.KindCommit, Envelope: otherGenesis}, ""},
		{"no roster genesis by another", f.alice, false, &wire.Publish{Op: "op2", Kind: wire.KindCommit, Envelope: otherGenesis}, refusedSender},
	} {
		rf := f.connAs(tc.who, tc.open).mayPublish(tc.p)
		switch {
		case tc.reason == "" && rf != nil:
			t.Errorf("%s: refused (%s: %s)", tc.name, rf.reason, rf.msg)
		case tc.reason != "" && (rf == nil || rf.reason != tc.reason):
			t.Errorf("%s: %+v, want refusal %s", tc.name, rf, tc.reason)
		}
	}
	// Epochs: an envelope from a later epoch than the node's roster is
	// "retry", from an earlier one "stale".
	if err := f.gb.ProcessCommit(ku); err != nil {
		t.Fatal(err)
	}
	if rf := f.connAs(f.bob, false).mayPublish(pub(wire.KindMessage, f.seal(t, f.gb))); rf == nil || rf.code != wire.CodeUnavailable {
		t.Errorf("future epoch: %+v", rf)
	}
	_, r1, err := crypto.CheckCommit(f.log.rosters["op"], ku)
	if err != nil {
		t.Fatal(err)
	}
	f.log.rosters["op"] = r1
	if rf := f.connAs(f.carol, false).mayPublish(pub(wire.KindMessage, f.seal(t, f.gc))); rf == nil || rf.code != wire.CodeStaleHead {
		t.Errorf("past epoch: %+v", rf)
	}
	// Reading.
	if rf := f.connAs(f.bob, false).mayRead("op"); rf != nil {
		t.Errorf("member read: %+v", rf)
	}
	if rf := f.connAs(mallory, false).mayRead("op"); rf == nil || rf.reason != refusedNotMember {
		t.Errorf("non-member read: %+v", rf)
	}
	if rf := f.connAs(mallory, false).mayRead("op2"); rf == nil || rf.reason != refusedNoRoster {
		t.Errorf("no roster read: %+v", rf)
	}
	if rf := f.connAs(mallory, true).mayRead("op2"); rf != nil {
		t.Errorf("open read: %+v", rf)
	}
}

// FuzzMayPublish: no entry, of any kind, makes the access check panic, and
// nothing but a well-formed envelope of bob's or his key update passes for
// bob, an officer.
func FuzzMayPublish(f *testing.F) {
	fx := newAccessFixture(f)
	f.Add(uint8(0), fx.seal(f, fx.gb))
	f.Add(uint8(2), fx.seal(f, fx.gb))
	f.Add(uint8(1), fx.genesis)
	f.Add(uint8(1), []byte{})
	f.Add(uint8(0), make([]byte, crypto.MinPadded+crypto.EnvelopeOverhead))
	c := fx.connAs(fx.bob, false)
	f.Fuzz(func(t *testing.T, kind uint8, entry []byte) {
		p := &wire.Publish{Op: "op", Kind: wire.Kind(kind % 3), Envelope: entry}
		if rf := c.mayPublish(p); rf == nil && p.Kind == wire.KindTask {
			t.Fatal("an officer's task passed")
		}
	})
}

func TestBucket(t *testing.T) {
	b := newBucket(10, 3)
	now := time.Unix(0, 0)
	for i := range 3 {
		if !b.take(now) {
			t.Fatalf("frame %d of the burst refused", i)
		}
	}
	for range 2 {
		if b.take(now) {
			t.Fatal("a frame over the burst passed")
		}
	}
	if b.strikes != 2 {
		t.Fatalf("over the burst: strikes %d", b.strikes)
	}
	if !b.take(now.Add(100*time.Millisecond)) || b.strikes != 0 {
		t.Fatal("a token did not come back after 1/rate")
	}
	if b.take(now.Add(100 * time.Millisecond)) {
		t.Fatal("two tokens from 1/rate")
	}
	later := now.Add(time.Hour)
	for i := range 4 {
		if got := b.take(later); got != (i < 3) {
			t.Fatalf("an hour later, frame %d: %v (the bucket caps at its burst)", i, got)
		}
	}
	u := newBucket(-1, 1)
	for range 100 {
		if !u.take(now) {
			t.Fatal("unlimited bucket refused")
		}
	}
}
