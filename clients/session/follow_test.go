package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"liaison/crypto"
)

// FollowFrom hands a reader that has shown the history up to some sequence
// every later entry once, in order: those processed since by another
// session over the same state (as the web page's second session does),
// then new ones as they commit.
func TestFollowFrom(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	bob := newPerson(t, srv, "bob", Options{})
	const op = "op-from"
	if _, err := alice.s.CreateOp(ctxT(t), op, []crypto.Invite{{Token: bob.id.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	alice.send(t, op, "one")
	alice.send(t, op, "two")
	bob.sync(t, op)
	shown := uint64(2) // the reader showed the commit and "one"
	alice.send(t, op, "three")
	other := New(bob.home, bob.id, dial(t, srv, bob.id), Options{KeyUpdateAfter: -1, Now: bob.now.Now})
	if _, err := other.Sync(ctxT(t), op); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(ctxT(t))
	seen := make(chan Entry, 8)
	done := make(chan error, 1)
	go func() { done <- bob.s.FollowFrom(ctx, op, shown+1, func(e Entry) { seen <- e }) }()
	var got []string
	for len(got) < 2 {
		select {
		case e := <-seen:
			got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.Text))
		case <-time.After(20 * time.Second):
			t.Fatalf("followed %v", got)
		}
	}
	alice.send(t, op, "four")
	select {
	case e := <-seen:
		got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.Text))
	case <-time.After(20 * time.Second):
		t.Fatalf("followed %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[3:two 4:three 5:four]" {
		t.Fatalf("followed %v", got)
	}
	select {
	case e := <-seen:
		t.Fatalf("an entry more: %+v", e)
	default:
	}
}
