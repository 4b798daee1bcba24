package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func mustRequest(t testing.TB, id *Identity, action, node string, now int64, args map[string]string) *AdminRequest {
	t.Helper()
	r, err := NewAdminRequest(detRand("req:"+action+node+string(rune(now))), id, action, node, now, args)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAdminRequestRoundTripAndTamper(t *testing.T) {
	alice := mustIdentity(t, "alice")
	r := mustRequest(t, alice, AdminActionRemove, "n3", 1_700_000_000_000, map[string]string{"id": "n3"})
	b := r.Encode()
	got, err := DecodeAdminRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Action != "remove" || got.Node != "n3" || got.Args["id"] != "n3" || got.Signer != alice.PublicKey() || got.Nonce != r.Nonce {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		if _, err := DecodeAdminRequest(bad); err == nil {
			t.Fatalf("flipping byte %d still verifies", i)
		}
	}
	if _, err := DecodeAdminRequest(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	// A signature without the context string, or under another one, does
	// not verify here.
	forged := *r
	forged.Signature = [64]byte(ed25519.Sign(alice.sign, r.unsigned()))
	if _, err := DecodeAdminRequest(forged.Encode()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("context-free signature accepted as admin request: %v", err)
	}
	forged.Signature = [64]byte(ed25519.Sign(alice.sign, append([]byte(ctxRelayLogin), r.unsigned()...)))
	if _, err := DecodeAdminRequest(forged.Encode()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("login-context signature accepted as admin request: %v", err)
	}
	if _, err := NewAdminRequest(detRand("x"), alice, "Bad Action", "n1", 0, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad action: %v", err)
	}
}

func TestAdminListChain(t *testing.T) {
	alice, bob, eve := mustIdentity(t, "alice"), mustIdentity(t, "bob"), mustIdentity(t, "eve")
	l0, err := NewAdminList([]Admin{{Key: alice.PublicKey(), Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if !l0.Contains(alice.PublicKey()) || l0.Contains(bob.PublicKey()) {
		t.Fatal("Contains")
	}
	head := l0.Hash()
	add := func(signer *Identity, key [32]byte, name string, prev [32]byte) *AdminRequest {
		return mustRequest(t, signer, AdminActionAdminsAdd, "n1", 1, map[string]string{"key": AdminKeyHex(key), "name": name, "prev": AdminKeyHex(prev)})
	}
	// A non-admin cannot add.
	if _, err := l0.ApplyRequest(add(eve, eve.PublicKey(), "eve", head)); !errors.Is(err, ErrNotClusterAdmin) {
		t.Fatalf("eve adds herself: %v", err)
	}
	// A stale head is refused.
	if _, err := l0.ApplyRequest(add(alice, bob.PublicKey(), "bob", [32]byte{1})); !errors.Is(err, ErrNotHead) {
		t.Fatalf("stale head: %v", err)
	}
	l1, err := l0.ApplyRequest(add(alice, bob.PublicKey(), "bob", head))
	if err != nil {
		t.Fatal(err)
	}
	if l1.Seq != 1 || l1.Prev != head || !l1.Contains(bob.PublicKey()) {
		t.Fatalf("l1 %+v", l1)
	}
	dec, err := DecodeAdminList(l1.Encode())
	if err != nil || dec.Hash() != l1.Hash() {
		t.Fatalf("decode: %v", err)
	}
	rm := func(signer *Identity, key [32]byte, prev [32]byte) *AdminRequest {
		return mustRequest(t, signer, AdminActionAdminsRemove, "n1", 2, map[string]string{"key": AdminKeyHex(key), "prev": AdminKeyHex(prev)})
	}
	l2, err := l1.ApplyRequest(rm(bob, alice.PublicKey(), l1.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	if l2.Contains(alice.PublicKey()) {
		t.Fatal("alice still an admin")
	}
	if _, err := l2.ApplyRequest(rm(bob, bob.PublicKey(), l2.Hash())); !errors.Is(err, ErrBadOp) {
		t.Fatalf("removing the last admin: %v", err)
	}
	// With no list, any signer's add creates the genesis.
	var none *AdminList
	g, err := none.ApplyRequest(add(eve, eve.PublicKey(), "eve", [32]byte{}))
	if err != nil || g.Seq != 0 || !g.Contains(eve.PublicKey()) {
		t.Fatalf("genesis by add: %v", err)
	}
}

// trail builds an audit trail the way the FSM does.
type trail struct {
	entries []*AuditEntry
}

func (tr *trail) add(timeMS int64, kind AuditKind, body []byte) {
	e := &AuditEntry{Seq: uint64(len(tr.entries) + 1), TimeMS: timeMS, Kind: kind, Body: body}
	if n := len(tr.entries); n > 0 {
		e.Prev = tr.entries[n-1].Hash()
	}
	tr.entries = append(tr.entries, e)
}

func (tr *trail) reencode(t testing.TB) []*AuditEntry {
	var out []*AuditEntry
	for _, e := range tr.entries {
		d, err := DecodeAuditEntry(e.Encode())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func buildTrail(t testing.TB) (*trail, *Identity, *Identity) {
	alice, bob := mustIdentity(t, "alice"), mustIdentity(t, "bob")
	w := newWorld(t, "op-audit", []string{"alice", "bob"}, nil)
	tr := &trail{}
	now := int64(1_700_000_000_000)
	l0, _ := NewAdminList([]Admin{{Key: alice.PublicKey(), Name: "alice"}})
	tr.add(now, AuditAdminBootstrap, AdminBootstrapBody("n1", l0))
	tr.add(now+1, AuditNodeJoin, NodeJoinBody("n2", "127.0.0.2:7401", "n1", nil))
	tr.add(now+2, AuditRosterCommit, RosterCommitBody("op-audit", 1, w.chain[0]))
	req := mustRequest(t, alice, AdminActionAdminsAdd, "n1", now+3, map[string]string{"key": AdminKeyHex(bob.PublicKey()), "name": "bob", "prev": AdminKeyHex(l0.Hash())})
	tr.add(now+4, AuditAdminAction, AdminActionBody(req))
	tr.add(now+5, AuditAdminAction, AdminActionBody(mustRequest(t, bob, AdminActionRemove, "n2", now+5, map[string]string{"id": "n3"})))
	return tr, alice, bob
}

func TestAuditTrailVerifies(t *testing.T) {
	tr, alice, _ := buildTrail(t)
	recs, err := VerifyAudit(tr.reencode(t))
	if err != nil {
		for _, r := range recs {
			t.Logf("%d %s %s %s %v", r.Seq, r.Actor, r.Action, r.Details, r.Err)
		}
		t.Fatal(err)
	}
	if recs[3].Actor != alice.Fingerprint() || recs[3].Action != AdminActionAdminsAdd {
		t.Fatalf("record 4: %+v", recs[3])
	}
	if recs[2].Action != "roster-commit" || recs[2].Actor != alice.Fingerprint() {
		t.Fatalf("record 3: %+v", recs[2])
	}
}

func TestAuditTrailTamperDetected(t *testing.T) {
	tr, _, _ := buildTrail(t)
	good := tr.reencode(t)
	// Flip each byte of each entry's encoding: either it no longer decodes,
	// or the trail no longer verifies.
	for i, e := range good {
		enc := e.Encode()
		for j := 0; j < len(enc); j += max(1, len(enc)/29) {
			bad := bytes.Clone(enc)
			bad[j] ^= 0x04
			d, err := DecodeAuditEntry(bad)
			if err != nil {
				continue
			}
			// A change to entry i shows at i or, through the chain, at i+1.
			cp := append([]*AuditEntry(nil), good[:min(i+2, len(good))]...)
			cp[i] = d
			// The last entry's unsigned fields are bound only by the head,
			// which readers compare with a node's (liaison admin audit
			// prints it and checks --head).
			if _, err := VerifyAudit(cp); err == nil && cp[len(cp)-1].Hash() == good[len(cp)-1].Hash() {
				t.Fatalf("entry %d byte %d flipped: trail still verifies with the same head", i+1, j)
			}
		}
	}
	// Dropping, reordering or duplicating entries breaks the chain.
	if _, err := VerifyAudit(append(append([]*AuditEntry(nil), good[:2]...), good[3:]...)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("dropped entry: %v", err)
	}
	if _, err := VerifyAudit([]*AuditEntry{good[1], good[0]}); err == nil {
		t.Fatal("reordered entries verify")
	}
	// A request by a non-admin, correctly chained, fails.
	eve := mustIdentity(t, "eve")
	tr.add(tr.entries[len(tr.entries)-1].TimeMS, AuditAdminAction, AdminActionBody(mustRequest(t, eve, AdminActionRemove, "n1", tr.entries[len(tr.entries)-1].TimeMS, map[string]string{"id": "n2"})))
	recs, err := VerifyAudit(tr.reencode(t))
	if !errors.Is(recs[len(recs)-1].Err, ErrNotClusterAdmin) || err == nil {
		t.Fatalf("non-admin entry: %v / %v", recs[len(recs)-1].Err, err)
	}
	// A replayed request (same nonce), correctly chained, fails.
	tr2, _, _ := buildTrail(t)
	last := tr2.entries[len(tr2.entries)-1]
	tr2.add(last.TimeMS, AuditAdminAction, last.Body)
	if _, err := VerifyAudit(tr2.reencode(t)); err == nil {
		t.Fatal("replayed request verifies")
	}
}

func FuzzAdminRequest(f *testing.F) {
	alice := mustIdentity(f, "alice")
	f.Add(mustRequest(f, alice, AdminActionJoin, "n2", 5, map[string]string{"id": "n2", "address": "127.0.0.2:7401"}).Encode())
	f.Add(mustRequest(f, alice, AdminActionBackup, "n1", 5, nil).Encode())
	f.Add([]byte{1, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeAdminRequest(b)
		if err == nil && !bytes.Equal(r.Encode(), b) {
			t.Fatal("accepted a non-canonical request")
		}
	})
}

func FuzzAuditEntry(f *testing.F) {
	tr, _, _ := buildTrail(f)
	for _, e := range tr.entries {
		f.Add(e.Encode())
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeAuditEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatal("accepted a non-canonical entry")
		}
		_, _ = VerifyAudit([]*AuditEntry{e})
	})
}

func FuzzAdminList(f *testing.F) {
	l, _ := NewAdminList([]Admin{{Key: [32]byte{1}, Name: "a"}, {Key: [32]byte{2}, Name: "b"}})
	f.Add(l.Encode())
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeAdminList(b)
		if err == nil && !bytes.Equal(l.Encode(), b) {
			t.Fatal("accepted a non-canonical list")
		}
	})
}

// With a join-certificate check, a join without a certificate fails.
func TestAuditJoinCertificateRequired(t *testing.T) {
	tr, _, _ := buildTrail(t)
	called := false
	_, err := VerifyAuditWith(tr.reencode(t), AuditOptions{VerifyJoinCert: func(string, *x509.Certificate, time.Time) error {
		called = true
		return nil
	}})
	if err == nil || called {
		t.Fatalf("join without certificate: %v (check called %v)", err, called)
	}
}
