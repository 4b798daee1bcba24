package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"liaison/crypto"
)

func newID(t *testing.T, name string) *crypto.Identity {
	t.Helper()
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func publishCommit(n *Node, op string, commit []byte) (Result, error) {
	var id [MsgIDLen]byte
	_, _ = rand.Read(id[:])
	return n.Publish(context.Background(), Publish{Op: op, MsgID: id, Kind: KindCommit, Envelope: commit})
}

// The FSM keeps each operation's roster chain linear: it accepts a genesis
// only for an empty operation and then only commits that name the current
// head and are signed with the authority the roster requires. Rejected
// commits store nothing. After a restart the roster is rebuilt from the log.
func TestRosterCommitsStayLinear(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	alice, bob, mallory := newID(t, "alice"), newID(t, "bob"), newID(t, "mallory")

	ga, genesis, err := crypto.NewGroup(rand.Reader, alice, "op-x", []crypto.Invite{{Token: bob.Token(), Role: crypto.RoleOfficer}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := publishCommit(n, "op-x", genesis); err != nil || r.Seq != 1 {
		t.Fatalf("genesis: %+v %v", r, err)
	}

	// A second genesis for the same operation is refused.
	_, genesis2, err := crypto.NewGroup(rand.Reader, mallory, "op-x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishCommit(n, "op-x", genesis2); !errors.Is(err, ErrStaleHead) && !errors.Is(err, ErrRejected) {
		t.Fatalf("second genesis: %v", err)
	}
	// A genesis for another operation's name is refused.
	if _, err := publishCommit(n, "op-y", genesis); !errors.Is(err, ErrRejected) {
		t.Fatalf("genesis under another name: %v", err)
	}

	// Two admins' commits race on the same head: the first wins, the
	// second is stale.
	c1, err := ga.Commit(rand.Reader, crypto.AddMember(mallory.Token(), crypto.RoleOfficer))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ga.Commit(rand.Reader, crypto.KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := publishCommit(n, "op-x", c1); err != nil || r.Seq != 2 {
		t.Fatalf("commit on head: %+v %v", r, err)
	}
	if _, err := publishCommit(n, "op-x", c2); !errors.Is(err, ErrStaleHead) {
		t.Fatalf("commit on an old head: %v", err)
	}
	if err := ga.ProcessCommit(c1); err != nil {
		t.Fatal(err)
	}

	// A member injected by someone without the admin's key (here: a valid
	// admin commit with its signature altered) is refused. Commits signed
	// by an officer are refused by the same check (crypto's tests).
	if _, err := crypto.JoinGroup(bob, [][]byte{genesis, c1}); err != nil {
		t.Fatal(err)
	}
	c3, err := ga.Commit(rand.Reader, crypto.AddMember(newID(t, "eve").Token(), crypto.RoleAdmin))
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte{}, c3...)
	forged[len(forged)-1] ^= 1
	if _, err := publishCommit(n, "op-x", forged); !errors.Is(err, ErrRejected) {
		t.Fatalf("commit with a bad signature: %v", err)
	}
	// Garbage as a commit is refused and nothing is stored.
	if _, err := publishCommit(n, "op-x", []byte("not a commit")); !errors.Is(err, ErrRejected) {
		t.Fatalf("garbage commit: %v", err)
	}
	if h := n.Head("op-x"); h.Last != 2 {
		t.Fatalf("rejected commits changed the log: head %d", h.Last)
	}
	// A plaintext-era operation cannot be taken over by a genesis.
	if _, err := n.Publish(context.Background(), Publish{Op: "old", MsgID: msgID(t), Envelope: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	_, g3, _ := crypto.NewGroup(rand.Reader, alice, "old", nil)
	if _, err := publishCommit(n, "old", g3); !errors.Is(err, ErrRejected) {
		t.Fatalf("genesis on an operation with entries: %v", err)
	}

	// Restart: the roster is rebuilt from the log, so the next commit on
	// the head is accepted and a stale one is still refused.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir)
	defer n.Close()
	if _, err := publishCommit(n, "op-x", c2); !errors.Is(err, ErrStaleHead) {
		t.Fatalf("stale commit after restart: %v", err)
	}
	if r, err := publishCommit(n, "op-x", c3); err != nil || r.Seq != 3 {
		t.Fatalf("commit on head after restart: %+v %v", r, err)
	}
	b, err := n.Read("op-x", 1, 10, 1<<20)
	if err != nil || len(b.Kinds) != 3 || b.Kinds[0] != KindCommit || b.Kinds[2] != KindCommit {
		t.Fatalf("read kinds %v %v", b.Kinds, err)
	}
}

// On an operation with a roster, the log takes only envelopes sealed in the
// current epoch: a message sealed before a commit that got in first is
// refused as stale (its sender re-seals it), so every member reading the log
// in order holds the keys of every message in it.
func TestMessagesMustBeSealedInTheCurrentEpoch(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	alice, bob := newID(t, "alice"), newID(t, "bob")
	ga, genesis, err := crypto.NewGroup(rand.Reader, alice, "epochs", []crypto.Invite{{Token: bob.Token(), Role: crypto.RoleOfficer}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishCommit(n, "epochs", genesis); err != nil {
		t.Fatal(err)
	}
	gb, err := crypto.JoinGroup(bob, [][]byte{genesis})
	if err != nil {
		t.Fatal(err)
	}
	head := func() crypto.LogHead { h := n.Head("epochs"); return crypto.NewLogHead(h.Last, h.Chain) }
	stale, err := ga.Seal([]byte("sealed in epoch 0"), head())
	if err != nil {
		t.Fatal(err)
	}
	ku, err := gb.Commit(rand.Reader, crypto.KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishCommit(n, "epochs", ku); err != nil {
		t.Fatal(err)
	}
	msg := func(env []byte) error {
		_, err := n.Publish(context.Background(), Publish{Op: "epochs", MsgID: msgID(t), Envelope: env})
		return err
	}
	if err := msg(stale); !errors.Is(err, ErrStaleHead) {
		t.Fatalf("message from an ended epoch: %v", err)
	}
	if err := msg([]byte("not an envelope")); !errors.Is(err, ErrRejected) {
		t.Fatalf("garbage on an operation with a roster: %v", err)
	}
	if err := ga.ProcessCommit(ku); err != nil {
		t.Fatal(err)
	}
	fresh, err := ga.Seal([]byte("sealed in epoch 1"), head())
	if err != nil {
		t.Fatal(err)
	}
	if err := msg(fresh); err != nil {
		t.Fatalf("message of the current epoch: %v", err)
	}
	if h := n.Head("epochs"); h.Last != 3 {
		t.Fatalf("log has %d entries, want genesis, key update, one message", h.Last)
	}
}
