package session

import (
	"bytes"
	"errors"
	"sort"
	"sync"
	"testing"
)

// memStore is a Store in memory, as a platform without files (the browser)
// provides one.
type memStore struct {
	mu    sync.Mutex
	blobs map[string][]byte
	saves int
	Locks
}

func newMemStore() *memStore {
	return &memStore{blobs: map[string][]byte{}}
}

func (m *memStore) Load(op string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[op]
	if !ok {
		return nil, ErrNoState
	}
	return bytes.Clone(b), nil
}

func (m *memStore) Save(op string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[op] = bytes.Clone(b)
	m.saves++
	return nil
}

func (m *memStore) List() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for op := range m.blobs {
		out = append(out, op)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memStore) Name(op string) string { return "memory:" + op }

// A session over another Store keeps everything there, encrypted, and
// nothing in its home directory; a second session over the same store (two
// connections of one page) sees the first's state.
func TestSessionOverStore(t *testing.T) {
	srv := newServer(t)
	st := newMemStore()
	alice := newPerson(t, srv, "alice", Options{Store: st})
	if _, err := alice.s.CreateOp(ctxT(t), "op1", nil); err != nil {
		t.Fatal(err)
	}
	alice.send(t, "op1", "kept in the store")
	if ops, err := (FileStore{Dir: alice.home}).List(); err != nil || len(ops) != 0 {
		t.Fatalf("files written under home: %v %v", ops, err)
	}
	if st.saves == 0 || bytes.Contains(st.blobs["op1"], []byte("kept in the store")) {
		t.Fatalf("%d saves; plaintext in the store: %v", st.saves, bytes.Contains(st.blobs["op1"], []byte("kept in the store")))
	}
	other := New("", alice.id, dial(t, srv, alice.id), Options{Store: st, KeyUpdateAfter: -1})
	h, err := other.History("op1", 1)
	if err != nil || len(h) != 2 || h[1].Text != "kept in the store" || h[1].Kind != EntryOwn {
		t.Fatalf("history through the second session: %+v %v", h, err)
	}
	ops, err := other.Ops()
	if err != nil || len(ops) != 1 || ops[0].Op != "op1" || !ops[0].Member {
		t.Fatalf("ops %+v %v", ops, err)
	}
	if _, err := other.History("op2", 1); !errors.Is(err, ErrNoState) {
		t.Fatalf("unknown op: %v", err)
	}
	// A store holding a damaged blob gives an error, not a panic.
	st.blobs["op1"] = append(st.blobs["op1"][:10:10], 1, 2, 3)
	if _, err := other.History("op1", 1); err == nil {
		t.Fatal("damaged state accepted")
	}
}

// Locks of different names are independent; a released lock can be taken
// again; a held one keeps a second taker waiting until it is released.
func TestLocks(t *testing.T) {
	var l Locks
	ua, _ := l.Lock("a")
	ub, _ := l.Lock("b") // would deadlock if "b" were "a"'s lock
	got := make(chan struct{})
	go func() {
		u, _ := l.Lock("a")
		close(got)
		u()
	}()
	ub()
	select {
	case <-got:
		t.Fatal("a held lock was taken")
	default:
	}
	ua()
	<-got
	ua2, _ := l.Lock("a")
	ua2()
}
