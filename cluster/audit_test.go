package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"liaison/crypto"
)

func signed(t *testing.T, id *crypto.Identity, action, node string, at time.Time, args map[string]string) []byte {
	t.Helper()
	r, err := crypto.NewAdminRequest(rand.Reader, id, action, node, at.UnixMilli(), args)
	if err != nil {
		t.Fatal(err)
	}
	return r.Encode()
}

func readTrail(t *testing.T, n *Node) []*crypto.AuditEntry {
	t.Helper()
	raw, err := n.ReadAudit(1, 1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*crypto.AuditEntry, len(raw))
	for i, b := range raw {
		if out[i], err = crypto.DecodeAuditEntry(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The FSM's checks of admin commands, applied directly to a store: they
// depend only on the entry (the leader's time in it), so every node reaches
// the same answer; refused commands change nothing.
func TestFSMAdminCommands(t *testing.T) {
	st, err := openStore(filepath.Join(t.TempDir(), "fsm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	alice, eve := newID(t, "alice"), newID(t, "eve")
	base := time.UnixMilli(1_800_000_000_000)
	index := uint64(0)
	apply := func(kind byte, at time.Time, body []byte) applyOut {
		t.Helper()
		index++
		cmd, err := decodeCommand(encodeAdminCommand(kind, at.UnixMilli(), body))
		if err != nil {
			t.Fatal(err)
		}
		outs, _, err := st.apply([]entryIn{{index: index, cmd: cmd}})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	l0, _ := crypto.NewAdminList([]crypto.Admin{{Key: alice.PublicKey(), Name: "alice"}})
	if out := apply(commandAdminBootstrap, base, crypto.AdminBootstrapBody("n1", l0)); out.err != nil || out.results[0].Seq != 1 {
		t.Fatalf("bootstrap: %+v", out)
	}
	if out := apply(commandAdminBootstrap, base, crypto.AdminBootstrapBody("n1", l0)); !errors.Is(out.err, ErrAdminsExist) {
		t.Fatalf("second bootstrap: %v", out.err)
	}
	rm := signed(t, alice, crypto.AdminActionRemove, "n1", base, map[string]string{"id": "n2"})
	if out := apply(commandAdminAction, base.Add(time.Second), rm); out.err != nil || out.results[0].Seq != 2 {
		t.Fatalf("admin remove: %+v", out)
	}
	for name, c := range map[string]struct {
		at   time.Time
		body []byte
		want error
	}{
		"replay":    {base.Add(2 * time.Second), rm, ErrUnauthorized},
		"non-admin": {base, signed(t, eve, crypto.AdminActionRemove, "n1", base, map[string]string{"id": "n2"}), ErrUnauthorized},
		"too old":   {base.Add(3 * time.Minute), signed(t, alice, crypto.AdminActionBackup, "n1", base, nil), ErrUnauthorized},
		"future":    {base, signed(t, alice, crypto.AdminActionBackup, "n1", base.Add(3*time.Minute), nil), ErrUnauthorized},
		"stale list": {base, signed(t, alice, crypto.AdminActionAdminsAdd, "n1", base,
			map[string]string{"key": crypto.AdminKeyHex(eve.PublicKey()), "name": "eve", "prev": crypto.AdminKeyHex([32]byte{9})}), ErrStaleHead},
		"not an admin to remove": {base, signed(t, alice, crypto.AdminActionAdminsRemove, "n1", base,
			map[string]string{"key": crypto.AdminKeyHex(eve.PublicKey()), "prev": crypto.AdminKeyHex(l0.Hash())}), ErrInvalid},
	} {
		out := apply(commandAdminAction, c.at, c.body)
		if !errors.Is(out.err, c.want) {
			t.Errorf("%s: %v, want %v", name, out.err, c.want)
		}
	}
	if seq, _ := st.auditHead(); seq != 2 {
		t.Fatalf("refused commands changed the trail: head %d", seq)
	}
	// A tampered statement does not decode.
	bad := append([]byte(nil), rm...)
	bad[len(bad)-1] ^= 1
	if out := apply(commandAdminAction, base, bad); !errors.Is(out.err, ErrUnauthorized) {
		t.Fatalf("tampered: %v", out.err)
	}
	// An admins-add naming the current head changes the list.
	add := signed(t, alice, crypto.AdminActionAdminsAdd, "n1", base, map[string]string{"key": crypto.AdminKeyHex(eve.PublicKey()), "name": "eve", "prev": crypto.AdminKeyHex(l0.Hash())})
	if out := apply(commandAdminAction, base, add); out.err != nil {
		t.Fatal(out.err)
	}
	if !st.adminList().Contains(eve.PublicKey()) {
		t.Fatal("eve not added")
	}
	// Nonces older than twice the window are pruned; their requests stay
	// refused by the window.
	later := base.Add(10 * time.Minute)
	if out := apply(commandAdminAction, later, signed(t, eve, crypto.AdminActionBackup, "n1", later, nil)); out.err != nil {
		t.Fatal(out.err)
	}
	if st.nonceUsed(mustDecode(t, rm).Nonce[:]) {
		t.Fatal("old nonce not pruned")
	}
	// Reopening rebuilds the list and head from the file.
	seq, head := st.auditHead()
	path := st.path
	st.close()
	if st, err = openStore(path); err != nil {
		t.Fatal(err)
	}
	if s2, h2 := st.auditHead(); s2 != seq || h2 != head || !st.adminList().Contains(eve.PublicKey()) {
		t.Fatalf("after reopen: head %d, list %+v", s2, st.adminList())
	}
}

func mustDecode(t *testing.T, b []byte) *crypto.AdminRequest {
	t.Helper()
	r, err := crypto.DecodeAdminRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Three in-process nodes: admin requests are authorised against the
// replicated list from any node (followers forward them to the leader),
// refused for non-admins, other nodes, other arguments and replays; the
// admin list changes only by admins; roster commits and joins land in the
// trail; every node holds the same trail and it verifies.
func TestAdminAuthorizationAcrossNodes(t *testing.T) {
	nodes := openCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, bob, eve := newID(t, "alice"), newID(t, "bob"), newID(t, "eve")
	if err := nodes[1].BootstrapAdmins(ctx, []crypto.Admin{{Key: alice.PublicKey(), Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return nodes[2].Admins() != nil })
	if err := nodes[2].BootstrapAdmins(ctx, []crypto.Admin{{Key: eve.PublicKey(), Name: "eve"}}); !errors.Is(err, ErrAdminsExist) {
		t.Fatalf("second bootstrap: %v", err)
	}
	now := time.Now()
	backup := func(id *crypto.Identity, node string) []byte {
		return signed(t, id, crypto.AdminActionBackup, node, now, nil)
	}
	// A non-admin is refused, on a follower and on the leader.
	for _, n := range nodes {
		if _, err := n.AuthorizeAdmin(ctx, backup(eve, n.cfg.NodeID), crypto.AdminActionBackup, nil); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("eve on %s: %v", n.cfg.NodeID, err)
		}
	}
	// An admin's request, on whichever node it names.
	stmt := backup(alice, "n3")
	if _, err := nodes[2].AuthorizeAdmin(ctx, stmt, crypto.AdminActionBackup, nil); err != nil {
		t.Fatal(err)
	}
	// Replayed to the same node, or to another: refused.
	if _, err := nodes[2].AuthorizeAdmin(ctx, stmt, crypto.AdminActionBackup, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := nodes[0].AuthorizeAdmin(ctx, stmt, crypto.AdminActionBackup, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("replay to another node: %v", err)
	}
	// Signed for other arguments or another action: refused.
	rm := signed(t, alice, crypto.AdminActionRemove, "n1", now, map[string]string{"id": "n2"})
	if _, err := nodes[0].AuthorizeAdmin(ctx, rm, crypto.AdminActionRemove, map[string]string{"id": "n3"}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("other args: %v", err)
	}
	if _, err := nodes[0].AuthorizeAdmin(ctx, rm, crypto.AdminActionJoin, map[string]string{"id": "n2"}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("other action: %v", err)
	}
	// The admin list: eve cannot add herself; alice adds bob (through a
	// follower); bob then acts.
	head := nodes[0].Admins().Hash()
	addArgs := func(id *crypto.Identity, name string, prev [32]byte) map[string]string {
		return map[string]string{"key": crypto.AdminKeyHex(id.PublicKey()), "name": name, "prev": crypto.AdminKeyHex(prev)}
	}
	a := addArgs(eve, "eve", head)
	if _, err := nodes[0].AuthorizeAdmin(ctx, signed(t, eve, crypto.AdminActionAdminsAdd, "n1", now, a), crypto.AdminActionAdminsAdd, a); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("eve adds herself: %v", err)
	}
	follower := nodes[0]
	for _, n := range nodes {
		if n.Status().State != "Leader" {
			follower = n
			break
		}
	}
	a = addArgs(bob, "bob", head)
	if _, err := follower.AuthorizeAdmin(ctx, signed(t, alice, crypto.AdminActionAdminsAdd, follower.cfg.NodeID, now, a), crypto.AdminActionAdminsAdd, a); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, func() bool { return n.Admins().Contains(bob.PublicKey()) })
	}
	// A second change naming the old head is stale.
	a = addArgs(eve, "eve", head)
	if _, err := nodes[0].AuthorizeAdmin(ctx, signed(t, bob, crypto.AdminActionAdminsAdd, "n1", now, a), crypto.AdminActionAdminsAdd, a); !errors.Is(err, ErrStaleHead) {
		t.Fatalf("stale head: %v", err)
	}
	if _, err := nodes[0].AuthorizeAdmin(ctx, backup(bob, "n1"), crypto.AdminActionBackup, nil); err != nil {
		t.Fatalf("bob after being added: %v", err)
	}
	// A roster change lands in the trail.
	_, genesis, err := crypto.NewGroup(rand.Reader, alice, "op-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishCommit(nodes[0], "op-a", genesis); err != nil {
		t.Fatal(err)
	}
	// Every node holds the same trail, and it verifies.
	seq, h := nodes[0].AuditHead()
	for _, n := range nodes {
		waitFor(t, func() bool { s, hh := n.AuditHead(); return s == seq && hh == h })
	}
	trail := readTrail(t, nodes[2])
	recs, err := crypto.VerifyAudit(trail)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"admins-bootstrap", "backup", "admins-add", "backup", "roster-commit"}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if recs[i].Action != w {
			t.Fatalf("record %d is %q, want %q", i+1, recs[i].Action, w)
		}
	}
	if recs[4].Actor != alice.Fingerprint() {
		t.Fatalf("roster commit actor %s", recs[4].Actor)
	}
}

// A node that joins with JoinVia (relayd --join) is recorded in the trail.
func TestJoinRecorded(t *testing.T) {
	n1 := openNode(t, t.TempDir())
	defer n1.Close()
	n2, err := Open(Config{NodeID: "n2", DataDir: t.TempDir(), RaftBind: freeAddr(t), Logger: quietLogger(), ElectionTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n2.JoinVia(ctx, n1.cfg.RaftAdvertise); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s, _ := n2.AuditHead(); return s == 1 })
	recs, err := crypto.VerifyAudit(readTrail(t, n2))
	if err != nil || len(recs) != 1 || recs[0].Action != "node-join" || recs[0].Actor != "node n1" {
		t.Fatalf("trail %+v %v", recs, err)
	}
}
