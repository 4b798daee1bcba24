package tui

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/clients"
	"liaison/clients/fakerelay"
	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type person struct {
	name string
	home string
	id   *crypto.Identity
	c    *clients.Client
	s    *session.Session
}

func newPerson(t *testing.T, name string) *person {
	t.Helper()
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return &person{name: name, home: t.TempDir(), id: id}
}

// connect gives p a new connection and session over the same home: what a
// new process does.
func (p *person) connect(t *testing.T, urls ...string) {
	t.Helper()
	c, err := clients.Dial(ctxT(t), urls, clients.Options{Identity: p.id, ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p.c = c
	p.s = session.New(p.home, p.id, c, session.Options{KeyUpdateAfter: -1})
}

// chat is a running engine and the model it feeds.
type chat struct {
	t   *testing.T
	eng *Engine
	m   *Model
}

func startChat(t *testing.T, p *person, op string) *chat {
	t.Helper()
	eng := NewEngine(p.s, p.c, EngineOptions{StatusEvery: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	m := New(eng, Options{Ops: []string{op}, Width: 120, Height: 30})
	eng.Start(op)
	ch := &chat{t: t, eng: eng, m: m}
	t.Cleanup(ch.close)
	return ch
}

func (c *chat) close() { c.eng.Close() }

// await feeds engine events to the model until cond holds.
func (c *chat) await(what string, cond func(m *Model) bool) {
	c.t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for !cond(c.m) {
		select {
		case ev, ok := <-c.eng.Events():
			if !ok {
				c.t.Fatalf("engine closed while waiting for %s", what)
			}
			c.m.Update(ev)
		case <-timeout.C:
			c.t.Fatalf("timed out waiting for %s; screen:\n%s", what, c.m.Text())
		}
	}
}

func (c *chat) awaitText(subs ...string) {
	c.t.Helper()
	c.await(strings.Join(subs, ", "), func(m *Model) bool {
		s := m.Text()
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	})
}

// send types text and presses enter; the effect runs as the runtime would
// run it.
func (c *chat) send(text string) {
	c.t.Helper()
	typeText(c.m, text)
	key(c.t, c.m, "enter")
}

// setup: alice creates op and adds bob.
func setup(t *testing.T, srv *fakerelay.Server, op string) (alice, bob *person) {
	t.Helper()
	alice, bob = newPerson(t, "Alice"), newPerson(t, "Bob")
	alice.connect(t, srv.URL)
	bob.connect(t, srv.URL)
	if _, err := alice.s.CreateOp(ctxT(t), op, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.s.Add(ctxT(t), op, bob.id.Token(), crypto.RoleOfficer); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// readTexts returns, as a reader sees the log, the texts of the messages of
// the given sender.
func readTexts(t *testing.T, reader *person, op, sender string) []string {
	t.Helper()
	if _, err := reader.s.Sync(ctxT(t), op); err != nil {
		t.Fatal(err)
	}
	h, err := reader.s.History(op, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range h {
		if e.SenderName == sender && (e.Kind == session.EntryMessage || e.Kind == session.EntryOwn) {
			out = append(out, e.Text)
		}
	}
	return out
}

// The engine and the model together on a relay that drops the connection
// after committing a message and before acking it: the typed message is
// re-sent under its msgid, stored once, shown once, verified; messages
// typed while the relay takes nothing stay in the outbox across quitting,
// and the next run sends each exactly once.
func TestChatOutboxExactlyOnceAcrossReconnect(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	alice, bob := setup(t, srv, "op1")
	c := startChat(t, bob, "op1")
	c.awaitText("● connected to n1", "* Alice added you (officer)", "op1 · epoch 1 · 2 members · you: officer")

	if _, err := alice.s.Send(ctxT(t), "op1", "Team A in position", wire.ClassRoutine); err != nil {
		t.Fatal(err)
	}
	c.awaitText("Alice ✓ Team A in position")

	// The first publish of a message is committed, then the connection
	// drops before the ack.
	var mu sync.Mutex
	dropped := 0
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		mu.Lock()
		defer mu.Unlock()
		if p.Kind == wire.KindMessage && dropped == 0 {
			dropped++
			return fakerelay.Decision{Action: fakerelay.CommitThenDrop}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	c.send("copy, on my way")
	ob := c.m.Outbox("op1")
	if len(ob) != 1 {
		t.Fatalf("outbox right after enter: %+v", ob)
	}
	id := ob[0].MsgID
	c.awaitText("Bob (you) ✓ copy, on my way")
	c.await("an empty outbox", func(m *Model) bool { return len(m.Outbox("op1")) == 0 })
	var sends int
	for _, p := range srv.Publishes() {
		if [16]byte(p.MsgID) == id {
			sends++
		}
	}
	if dropped != 1 || sends < 2 {
		t.Fatalf("dropped %d, publishes of the msgid %d: the reconnect path was not exercised", dropped, sends)
	}
	if n := strings.Count(c.m.Text(), "copy, on my way"); n != 1 {
		t.Fatalf("shown %d times", n)
	}
	if got := readTexts(t, alice, "op1", "Bob"); strings.Join(got, "|") != "copy, on my way" {
		t.Fatalf("alice reads %q", got)
	}

	// Now the relay takes nothing: every publish drops the connection.
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		if p.Kind == wire.KindMessage {
			return fakerelay.Decision{Action: fakerelay.DropBeforeCommit}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	c.send("second")
	c.send("third")
	c.awaitText("you … second", "you … third")
	srv.Await(t, "an attempt to publish", func() bool {
		for _, p := range srv.Publishes() {
			if p.Kind == wire.KindMessage && len(p.Envelope) > 0 && [16]byte(p.MsgID) != id {
				return true
			}
		}
		return false
	})
	c.close() // quit
	bob.c.Close()
	if got := readTexts(t, alice, "op1", "Bob"); len(got) != 1 {
		t.Fatalf("relay stored %q while refusing", got)
	}

	// The next run: the outbox is still there, and is sent once.
	srv.SetOnPublish(nil)
	bob.connect(t, srv.URL)
	left, err := bob.s.Outbox("op1")
	if err != nil || len(left) != 2 || left[0].Text != "second" || left[1].Text != "third" {
		t.Fatalf("outbox after quitting %+v %v", left, err)
	}
	c2 := startChat(t, bob, "op1")
	c2.awaitText("Bob (you) ✓ second", "Bob (you) ✓ third")
	c2.await("an empty outbox", func(m *Model) bool { return len(m.Outbox("op1")) == 0 })
	if got := readTexts(t, alice, "op1", "Bob"); strings.Join(got, "|") != "copy, on my way|second|third" {
		t.Fatalf("alice reads %q", got)
	}
	// Every message of the log is there once.
	seen := make(map[string]bool)
	for _, e := range srv.Entries("op1") {
		if seen[string(e)] {
			t.Fatal("an entry is stored twice")
		}
		seen[string(e)] = true
	}
	if n := strings.Count(c2.m.Text(), "second"); n != 1 {
		t.Fatalf("second shown %d times:\n%s", n, c2.m.Text())
	}
}

// A message from another member appears in a second operation's unread
// count; the safety numbers are those of the verified roster.
func TestChatUnreadAndSafetyFromEngine(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	alice, bob := setup(t, srv, "alpha")
	if _, err := alice.s.CreateOp(ctxT(t), "bravo", []crypto.Invite{{Token: bob.id.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(bob.s, bob.c, EngineOptions{StatusEvery: 20 * time.Millisecond})
	m := New(eng, Options{Ops: []string{"alpha", "bravo"}, Current: "alpha", Width: 120, Height: 30})
	eng.Start("alpha", "bravo")
	c := &chat{t: t, eng: eng, m: m}
	t.Cleanup(c.close)
	c.awaitText("Alice added you", "● connected to n1")
	c.await("bravo joined", func(m *Model) bool { return m.ops[m.index("bravo")].info.Member })
	if _, err := alice.s.Send(ctxT(t), "bravo", "over here", wire.ClassRoutine); err != nil {
		t.Fatal(err)
	}
	c.await("an unread message in bravo", func(m *Model) bool { return m.Unread("bravo") == 1 })
	c.awaitText("bravo (1)")
	key(t, m, "ctrl+s")
	c.awaitText("Safety number with Alice:", crypto.SafetyNumber(bob.id.PublicKey(), alice.id.PublicKey()))
	key(t, m, "esc")
	key(t, m, "tab")
	c.awaitText("Alice ✓ over here")
	if m.Unread("bravo") != 0 {
		t.Fatal("unread after switching")
	}
	if k := bob.id.PublicKey(); !bytes.Equal(m.ops[m.index("bravo")].colleagues[0].Key[:], k[:]) {
		t.Fatal("colleagues do not start with the user")
	}
}

// Queue after Close saves the message for the next run and starts nothing.
func TestEngineQueueAfterClose(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	_, bob := setup(t, srv, "op1")
	eng := NewEngine(bob.s, bob.c, EngineOptions{})
	eng.Start("op1")
	eng.Close()
	eng.Close()
	if _, err := eng.Queue("op2", "later", wire.ClassRoutine); err != nil {
		t.Fatal(err)
	}
	if ob, err := bob.s.Outbox("op2"); err != nil || len(ob) != 1 || ob[0].Text != "later" {
		t.Fatalf("outbox %+v %v", ob, err)
	}
	for range eng.Events() {
	}
}

// Work that syncs by itself (as a task's acknowledgement does) runs on the
// operation's pump between follows, never beside its subscription, and what
// it processed reaches the screen.
func TestEngineJobsRunBetweenFollows(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	_, bob := setup(t, srv, "op1")
	c := startChat(t, bob, "op1")
	c.awaitText("● connected to n1", "Alice added you")
	for i := range 3 {
		text := fmt.Sprintf("through the pump %d", i)
		err := c.eng.do("op1", func(ctx context.Context) error {
			_, err := bob.s.Send(ctx, "op1", text, wire.ClassRoutine)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c.awaitText("Bob (you) ✓ " + text)
	}
	c.close()
	if err := c.eng.do("op1", func(context.Context) error { return nil }); !errors.Is(err, errEngineClosed) {
		t.Fatalf("job after close: %v", err)
	}
}

// Tasking through two chats on the relay: the centre sends a flash task
// with /task, the officer's pane lists it and one key acknowledges it as
// understood, /done closes it; the sender's pane counts the
// acknowledgement and the session's task status agrees.
func TestChatTasking(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	alice, bob := setup(t, srv, "op1")
	ca := startChat(t, alice, "op1")
	cb := startChat(t, bob, "op1")
	ca.awaitText("● connected to n1", "you: admin")
	cb.awaitText("● connected to n1", "you: officer")

	ca.send("/task flash evacuate gate 4")
	ca.awaitText("task sent to op1")
	cb.awaitText("TASKS: 1 to acknowledge", "FLASH", "Alice✓: evacuate gate 4", "Alice ✓ ▲ FLASH TASK ")
	ts, err := alice.s.Tasks("op1", nil)
	if err != nil || len(ts) != 1 {
		t.Fatalf("tasks %+v %v", ts, err)
	}
	short := ts[0].ID.Short()
	cb.awaitText("▲ FLASH     " + short + " op1  Alice✓: evacuate gate 4")

	key(t, cb.m, "ctrl+a")
	cb.awaitText("TASKS: 0 to acknowledge", "evacuate gate 4  (understood)", "Bob (you) ✓ acknowledged task "+short+": understood")
	ca.awaitText("sent by you " + short + " op1: evacuate gate 4 · received 1/1 · acknowledged 1/1")
	ts, err = alice.s.Tasks("op1", nil)
	if err != nil || len(ts) != 1 || len(ts[0].Members) != 1 || ts[0].Members[0].State != session.AckUnderstood {
		t.Fatalf("tasks %+v %v", ts, err)
	}

	cb.send("/done")
	cb.await("the task closed", func(m *Model) bool { return len(m.inHand()) == 0 && len(m.openTasks()) == 0 })
	cb.awaitText("acknowledged task " + short + ": done")
	ca.awaitText("Bob ✓ acknowledged task " + short + ": done")
	if ts, _ := alice.s.Tasks("op1", nil); ts[0].Members[0].State != session.AckDone {
		t.Fatalf("state %v", ts[0].Members[0].State)
	}
	// An officer may not send tasks: the refusal is shown.
	cb.send("/task routine do something")
	cb.awaitText("task not sent:")
}
