package crypto

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// detRand returns a deterministic randomness reader for seed.
func detRand(seed string) io.Reader {
	var s [32]byte
	copy(s[:], seed)
	return mrand.NewChaCha8(s)
}

var cheapKDF = KDFParams{Time: 1, Memory: 64, Threads: 1}

func mustIdentity(t testing.TB, name string) *Identity {
	t.Helper()
	id, err := NewIdentity(detRand("id:"+name), name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// world simulates the relay's log for one operation: the ordered commit
// chain, and a set of member clients kept up to date.
type world struct {
	t      testing.TB
	rng    io.Reader
	chain  [][]byte
	ids    map[string]*Identity
	groups map[string]*Group // online members
	roster *Roster           // the relay's view
}

// newWorld creates an operation with the named members; the first is the
// creator (admin); roles maps other names to roles (default officer).
func newWorld(t testing.TB, opID string, names []string, roles map[string]Role) *world {
	t.Helper()
	w := &world{t: t, rng: detRand("world:" + opID), ids: map[string]*Identity{}, groups: map[string]*Group{}}
	var invites []Invite
	for i, n := range names {
		w.ids[n] = mustIdentity(t, n)
		if i > 0 {
			role, ok := roles[n]
			if !ok {
				role = RoleOfficer
			}
			invites = append(invites, Invite{Token: w.ids[n].Token(), Role: role})
		}
	}
	g, gen, err := NewGroup(w.rng, w.ids[names[0]], opID, invites)
	if err != nil {
		t.Fatal(err)
	}
	w.accept(gen)
	w.groups[names[0]] = g
	for _, n := range names[1:] {
		g, err := JoinGroup(w.ids[n], w.chain)
		if err != nil {
			t.Fatalf("join %s: %v", n, err)
		}
		w.groups[n] = g
	}
	return w
}

// accept runs the relay FSM check and appends the commit to the log.
func (w *world) accept(b []byte) {
	w.t.Helper()
	_, next, err := CheckCommit(w.roster, b)
	if err != nil {
		w.t.Fatalf("relay rejected commit: %v", err)
	}
	w.roster = next
	w.chain = append(w.chain, b)
}

// commit has member `by` commit changes; the relay accepts it and every
// online group processes it. Removed members are dropped from groups.
func (w *world) commit(by string, changes ...Change) []byte {
	w.t.Helper()
	b, err := w.groups[by].Commit(w.rng, changes...)
	if err != nil {
		w.t.Fatalf("commit by %s: %v", by, err)
	}
	w.accept(b)
	for n, g := range w.groups {
		if err := g.ProcessCommit(b); err != nil {
			if errors.Is(err, ErrNotMember) {
				delete(w.groups, n)
				continue
			}
			w.t.Fatalf("%s process: %v", n, err)
		}
	}
	return b
}

// add creates an identity and has `by` add it; the newcomer joins from the
// chain.
func (w *world) add(by, name string, role Role) {
	w.t.Helper()
	w.ids[name] = mustIdentity(w.t, name)
	w.commit(by, AddMember(w.ids[name].Token(), role))
	g, err := JoinGroup(w.ids[name], w.chain)
	if err != nil {
		w.t.Fatalf("join %s: %v", name, err)
	}
	w.groups[name] = g
}

func (w *world) key(name string) [32]byte { return w.ids[name].PublicKey() }

func (w *world) seal(from, text string) []byte {
	w.t.Helper()
	env, err := w.groups[from].Seal([]byte(text), LogHead{Seq: uint64(len(w.chain))})
	if err != nil {
		w.t.Fatal(err)
	}
	return env
}

func save(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func restore(t testing.TB, id *Identity, b []byte) *Group {
	t.Helper()
	g, err := UnmarshalGroup(id, b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// mustOpen opens env in g and checks the plaintext.
func mustOpen(t testing.TB, g *Group, env []byte, want string) *Message {
	t.Helper()
	m, err := g.Open(env)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !bytes.Equal(m.Plaintext, []byte(want)) {
		t.Fatalf("plaintext %q, want %q", m.Plaintext, want)
	}
	return m
}

// cannotRead asserts that state st (a group, possibly fed commits) opens
// none of the envelopes.
func cannotRead(t testing.TB, g *Group, envs ...[]byte) {
	t.Helper()
	for i, env := range envs {
		if m, err := g.Open(env); err == nil {
			t.Fatalf("envelope %d decrypted: %q", i, m.Plaintext)
		}
	}
}
