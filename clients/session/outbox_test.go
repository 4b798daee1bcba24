package session

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"liaison/clients"
	"liaison/clients/fakerelay"
	"liaison/relay/wire"
)

// logTexts returns the texts of op's log entries as reader sees them after
// a sync.
func logTexts(t *testing.T, reader *person, op string) []string {
	t.Helper()
	reader.sync(t, op)
	return texts(reader.history(t, op))
}

// Messages queued without a relay survive a new process, are sealed and
// published by the next Sync in order, each exactly once, under the msgid
// fixed when they were queued.
func TestQueueSurvivesAndSendsOnce(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "opq")
	offline := New(alice.home, alice.id, nil, Options{Now: alice.now.Now, KeyUpdateAfter: -1})
	q1, err := offline.Queue("opq", "one", wire.ClassRoutine)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := offline.Queue("opq", "two", wire.ClassFlash)
	if err != nil {
		t.Fatal(err)
	}
	if q1.MsgID == q2.MsgID {
		t.Fatal("same msgid twice")
	}
	// A new process sees the outbox, and no operation named after it.
	alice.connect(t, srv, Options{})
	if ops, err := alice.s.Ops(); err != nil || len(ops) != 1 || ops[0].Op != "opq" {
		t.Fatalf("ops %+v %v", ops, err)
	}
	ob, err := alice.s.Outbox("opq")
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != 2 || ob[0].MsgID != q1.MsgID || ob[1].Text != "two" || ob[1].Class != wire.ClassFlash || ob[0].Sealed {
		t.Fatalf("outbox %+v", ob)
	}
	before := len(srv.Entries("opq"))
	alice.sync(t, "opq")
	alice.sync(t, "opq") // a second sync sends nothing again
	if n := len(srv.Entries("opq")); n != before+2 {
		t.Fatalf("log grew by %d, want 2", n-before)
	}
	pubs := srv.Publishes()
	last := pubs[len(pubs)-2:]
	if [16]byte(last[0].MsgID) != q1.MsgID || [16]byte(last[1].MsgID) != q2.MsgID || last[1].Class != wire.ClassFlash {
		t.Fatal("queued messages not published under their msgids and class")
	}
	if ob, err := alice.s.Outbox("opq"); err != nil || len(ob) != 0 {
		t.Fatalf("outbox after sync %+v %v", ob, err)
	}
	h := alice.history(t, "opq")
	own := h[len(h)-2:]
	if own[0].Kind != EntryOwn || own[0].Text != "one" || !bytes.Equal(own[0].MsgID, q1.MsgID[:]) || own[1].Text != "two" {
		t.Fatalf("history %+v", own)
	}
	if got := logTexts(t, bob, "opq"); strings.Join(got, "|") != "one|two" {
		t.Fatalf("bob reads %q", got)
	}
}

// The crash window between saving the state (message sealed and pending)
// and rewriting the outbox: the message is in both. The next Sync removes
// it from the outbox without sealing it again and publishes it once.
func TestQueueCrashBetweenStateAndOutbox(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "opc")
	q, err := alice.s.Queue("opc", "only once", wire.ClassRoutine)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(alice.s.outboxName("opc"))
	if err != nil {
		t.Fatal(err)
	}
	// The relay takes nothing: the sync seals the message, saves it as
	// pending, empties the outbox, and waits for an ack that never comes.
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		return fakerelay.Decision{Action: fakerelay.Ignore}
	})
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := alice.s.Sync(ctx, "opc")
		errc <- err
	}()
	srv.Await(t, "the publish", func() bool {
		ps := srv.Publishes()
		return len(ps) > 0 && [16]byte(ps[len(ps)-1].MsgID) == q.MsgID
	})
	cancel()
	if err := <-errc; !errors.Is(err, clients.ErrUnknownOutcome) {
		t.Fatalf("sync: %v", err)
	}
	alice.c.Close()
	// Put the outbox back as it was before the rewrite.
	if err := WriteFileAtomic(alice.s.outboxName("opc"), saved); err != nil {
		t.Fatal(err)
	}
	srv.SetOnPublish(nil)
	alice.connect(t, srv, Options{})
	ob, err := alice.s.Outbox("opc")
	if err != nil || len(ob) != 1 || !ob[0].Sealed || ob[0].MsgID != q.MsgID {
		t.Fatalf("outbox %+v %v: the message must show once, as sealed", ob, err)
	}
	alice.sync(t, "opc")
	alice.sync(t, "opc")
	if got := logTexts(t, bob, "opc"); strings.Join(got, "|") != "only once" {
		t.Fatalf("bob reads %q", got)
	}
	if ob, err := alice.s.Outbox("opc"); err != nil || len(ob) != 0 {
		t.Fatalf("outbox %+v %v", ob, err)
	}
	if idx := msgIndices(t, srv, "opc"); len(idx) != 2 {
		t.Fatalf("message indices %v", idx)
	}
}

func TestQueueBadInput(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	if _, err := alice.s.Queue("bad/op", "x", wire.ClassRoutine); !errors.Is(err, clients.ErrInvalidOp) {
		t.Fatalf("bad op: %v", err)
	}
	if _, err := alice.s.Queue("op", strings.Repeat("x", MaxText+1), wire.ClassRoutine); err == nil {
		t.Fatal("oversized text accepted")
	}
	if _, err := alice.s.Queue("op", "x", wire.Class(9)); err == nil {
		t.Fatal("bad class accepted")
	}
	if _, err := os.Stat(alice.s.outboxName("op")); err == nil {
		t.Fatal("refused input wrote an outbox")
	}
	if _, err := alice.s.Queue("op", "ok", wire.ClassRoutine); err != nil {
		t.Fatal(err)
	}
	// Another identity cannot read it.
	other := newPerson(t, srv, "other", Options{})
	other.s = New(alice.home, other.id, nil, Options{})
	if _, err := other.s.Queue("op", "x", wire.ClassRoutine); err == nil {
		t.Fatal("another identity's outbox accepted")
	}
	// A damaged outbox is a clear error, and Queue does not overwrite it.
	b, _ := os.ReadFile(alice.s.outboxName("op"))
	b[len(b)-1] ^= 1
	if err := os.WriteFile(alice.s.outboxName("op"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.s.Queue("op", "again", wire.ClassRoutine); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("damaged outbox: %v", err)
	}
	if after, _ := os.ReadFile(alice.s.outboxName("op")); !bytes.Equal(after, b) {
		t.Fatal("damaged outbox was rewritten")
	}
}
