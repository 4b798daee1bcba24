package tui

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"go.uber.org/goleak"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBackend records the model's effects.
type fakeBackend struct {
	mu     sync.Mutex
	queued []session.Queued
	ops    []string
	acks   []string
	tasks  []string
	err    error
}

func (f *fakeBackend) Queue(op, text string, class wire.Class) (session.Queued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return session.Queued{}, f.err
	}
	q := session.Queued{MsgID: clients.NewMsgID(), Class: class, Text: text, TimeMS: 1_700_000_000_000}
	f.queued = append(f.queued, q)
	f.ops = append(f.ops, op)
	return q, nil
}

func (f *fakeBackend) Ack(op, id string, state TaskState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, op+"/"+id+"="+state.String())
	return f.err
}

func (f *fakeBackend) SendTask(op string, priority wire.Class, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = append(f.tasks, fmt.Sprintf("%s/%s/%s", op, priority, text))
	return f.err
}

// namedKeys are the keys press knows by name.
var namedKeys = map[string]rune{
	"enter": tea.KeyEnter, "tab": tea.KeyTab, "esc": tea.KeyEscape,
	"up": tea.KeyUp, "down": tea.KeyDown, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown,
}

func press(s string) tea.KeyPressMsg {
	if code, ok := namedKeys[s]; ok {
		return tea.KeyPressMsg{Code: code}
	}
	if c, ok := strings.CutPrefix(s, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: rune(c[0]), Mod: tea.ModCtrl}
	}
	r := []rune(s)
	return tea.KeyPressMsg{Code: r[0], Text: s}
}

// typeText types s into the model, one key per character.
func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(press(string(r)))
	}
}

// key presses k and runs the effect it returns, if any, feeding the
// result back to the model (what the bubbletea runtime does).
func key(t *testing.T, m *Model, k string) {
	t.Helper()
	_, cmd := m.Update(press(k))
	if cmd == nil {
		return
	}
	if msg := cmd(); msg != nil {
		m.Update(msg)
	}
}

func screen(m *Model) string { return m.Text() }

func mustContain(t *testing.T, m *Model, subs ...string) {
	t.Helper()
	s := screen(m)
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("screen lacks %q:\n%s", sub, s)
		}
	}
}

func mustNotContain(t *testing.T, m *Model, subs ...string) {
	t.Helper()
	s := screen(m)
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Fatalf("screen shows %q:\n%s", sub, s)
		}
	}
}

func msgEntry(seq uint64, from, text string) session.Entry {
	return session.Entry{Seq: seq, Kind: session.EntryMessage, SenderName: from, Text: text, Type: session.TypeChat, TimeMS: 1_700_000_000_000}
}

// Messages show their sender and the mark session.Entry.Verified gives
// them; entries that are not authentic messages never look like one, and
// text cannot drive the terminal.
func TestModelHistoryMarks(t *testing.T) {
	m := New(&fakeBackend{}, Options{Ops: []string{"op1"}, Width: 120, Height: 30})
	warned := msgEntry(3, "Carol", "late news")
	warned.Warnings = []string{"1 earlier message(s) from Carol not received (dropped, or delayed)"}
	m.Update(HistoryMsg{Op: "op1", Entries: []session.Entry{
		{Seq: 1, Kind: session.EntryCommit, Summary: "Alice created operation op1 — epoch 0", TimeMS: 1},
		msgEntry(2, "Alice", "Team A in position"),
		warned,
		{Seq: 4, Kind: session.EntryRejected, Warnings: []string{"message failed verification: bad signature"}},
		{Seq: 5, Kind: session.EntryBeforeJoin},
		msgEntry(6, "Mallory\x1b[2J", "evil\x1b]0;pwned\x07text"),
		{Seq: 7, Kind: session.EntryOwn, SenderName: "Bob", Text: "mine", Type: session.TypeChat},
	}})
	mustContain(t, m,
		"* Alice created operation op1",
		"Alice ✓ Team A in position",
		"Carol ✓! late news",
		"! 1 earlier message(s) from Carol not received",
		"✗ [rejected]",
		"! message failed verification: bad signature",
		"? [sent before you joined]",
		`Mallory\x1b[2J ✓ evil\x1b]0;pwned\atext`,
		"Bob (you) ✓ mine",
	)
	if strings.Contains(m.View().Content, "\x1b[2J") || strings.Contains(m.View().Content, "\x1b]0;pwned") {
		t.Fatal("escape sequences from a message reached the terminal")
	}
	// An entry already shown is not shown twice.
	m.Update(HistoryMsg{Op: "op1", Entries: []session.Entry{msgEntry(2, "Alice", "Team A in position"), msgEntry(8, "Alice", "next")}})
	if n := strings.Count(screen(m), "Team A in position"); n != 1 {
		t.Fatalf("entry shown %d times", n)
	}
	mustContain(t, m, "Alice ✓ next")
}

// Operations are listed with unread counts: entries from the relay in an
// operation not on screen count, local backlog and own entries do not;
// switching to the operation clears its count.
func TestModelUnreadCounts(t *testing.T) {
	m := New(&fakeBackend{}, Options{Ops: []string{"alpha", "bravo"}, Current: "alpha", Width: 100, Height: 20})
	m.Update(HistoryMsg{Op: "bravo", Backlog: true, Entries: []session.Entry{msgEntry(1, "Alice", "old")}})
	if m.Unread("bravo") != 0 {
		t.Fatal("backlog counted as unread")
	}
	m.Update(HistoryMsg{Op: "bravo", Entries: []session.Entry{
		msgEntry(2, "Alice", "new one"),
		{Seq: 3, Kind: session.EntryCommit, Summary: "x"},
		{Seq: 4, Kind: session.EntryOwn, SenderName: "Bob", Text: "mine"},
		msgEntry(5, "Alice", "new two"),
	}})
	m.Update(HistoryMsg{Op: "alpha", Entries: []session.Entry{msgEntry(1, "Carol", "on screen")}})
	if m.Unread("bravo") != 2 || m.Unread("alpha") != 0 {
		t.Fatalf("unread bravo %d alpha %d", m.Unread("bravo"), m.Unread("alpha"))
	}
	mustContain(t, m, "bravo (2)", "Carol ✓ on screen")
	mustNotContain(t, m, "new two")
	key(t, m, "tab")
	if m.Current() != "bravo" || m.Unread("bravo") != 0 {
		t.Fatalf("current %q unread %d", m.Current(), m.Unread("bravo"))
	}
	mustContain(t, m, "Alice ✓ new two", "▸bravo")
	mustNotContain(t, m, "bravo (2)", "on screen")
	key(t, m, "ctrl+p")
	if m.Current() != "alpha" {
		t.Fatalf("current %q", m.Current())
	}
}

// Enter queues the typed text through the Backend (persisted, msgid fixed
// there); the outbox shows it until the own entry with that msgid arrives
// from the log.
func TestModelSendThroughOutbox(t *testing.T) {
	be := &fakeBackend{}
	m := New(be, Options{Ops: []string{"op1"}, Width: 120, Height: 20})
	key(t, m, "enter") // nothing typed: no effect
	typeText(m, "hello there")
	key(t, m, "enter")
	if len(be.queued) != 1 || be.ops[0] != "op1" || be.queued[0].Text != "hello there" || be.queued[0].Class != wire.ClassRoutine {
		t.Fatalf("queued %+v", be.queued)
	}
	q := be.queued[0]
	if ob := m.Outbox("op1"); len(ob) != 1 || ob[0].MsgID != q.MsgID {
		t.Fatalf("outbox %+v", ob)
	}
	mustContain(t, m, "you … hello there", "(queued, waiting for the relay)", "op1 …1")
	if strings.Contains(screen(m), "> hello") {
		t.Fatal("input not cleared")
	}
	// The engine's view of the outbox: sealed, awaiting the ack.
	q.Sealed = true
	m.Update(OutboxMsg{Op: "op1", Items: []session.Queued{q}})
	mustContain(t, m, "(sent, waiting for the relay's confirmation)")
	// It reaches the log.
	m.Update(HistoryMsg{Op: "op1", Entries: []session.Entry{{Seq: 9, Kind: session.EntryOwn, SenderName: "Bob", Text: "hello there", Type: session.TypeChat, MsgID: q.MsgID[:]}}})
	if len(m.Outbox("op1")) != 0 {
		t.Fatal("outbox kept a message that is in the log")
	}
	mustContain(t, m, "Bob (you) ✓ hello there")
	mustNotContain(t, m, "waiting for the relay")
	// A late answer of the queue effect does not bring it back.
	m.Update(queuedMsg{op: "op1", q: q})
	if len(m.Outbox("op1")) != 0 {
		t.Fatal("late queued answer re-added a sent message")
	}

	typeText(m, "/flash evacuate now")
	key(t, m, "enter")
	if len(be.queued) != 2 || be.queued[1].Class != wire.ClassFlash || be.queued[1].Text != "evacuate now" {
		t.Fatalf("flash %+v", be.queued)
	}
	typeText(m, "/nonsense")
	key(t, m, "enter")
	if len(be.queued) != 2 {
		t.Fatal("unknown command sent as a message")
	}
	mustContain(t, m, "unknown command /nonsense")
	key(t, m, "esc")
	typeText(m, "//slash at start")
	key(t, m, "enter")
	if len(be.queued) != 3 || be.queued[2].Text != "/slash at start" {
		t.Fatalf("escaped slash %+v", be.queued)
	}
	be.err = errors.New("disk full")
	typeText(m, "lost?")
	key(t, m, "enter")
	mustContain(t, m, "not queued: disk full")
}

// The connection indicator names the node in use, or says it is offline.
func TestModelConnectionIndicator(t *testing.T) {
	m := New(&fakeBackend{}, Options{Ops: []string{"op1"}, Width: 100, Height: 10})
	mustContain(t, m, "○ offline: reconnecting…")
	m.Update(ConnMsg(clients.Status{Connected: true, Node: "n2", URL: "ws://127.0.0.2:7400/ws"}))
	mustContain(t, m, "● connected to n2 (127.0.0.2:7400)")
	// Narrow terminals keep the indicator and cut the description.
	m.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	mustContain(t, m, "● connected to n2 (127.0.0.2:7400)")
	m.Update(ConnMsg(clients.Status{}))
	mustContain(t, m, "○ offline")
	mustNotContain(t, m, "n2")
}

// ctrl+s shows the members' fingerprints and the safety number with the
// selected colleague.
func TestModelSafetyNumbers(t *testing.T) {
	ids := make([]*crypto.Identity, 3)
	for i, n := range []string{"Bob", "Alice", "Carol"} {
		id, err := crypto.NewIdentity(rand.Reader, n)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	r := &crypto.Roster{OpID: "op1", Epoch: 2}
	for i, id := range ids {
		r.Members = append(r.Members, crypto.Member{Key: id.PublicKey(), Name: id.Name(), Role: crypto.Role(i + 1)})
	}
	cs := session.Colleagues(r, ids[0].PublicKey())
	m := New(&fakeBackend{}, Options{Ops: []string{"op1"}, Width: 120, Height: 20})
	m.Update(InfoMsg{Op: "op1", Info: session.OpInfo{Op: "op1", Epoch: 2, Members: 3, Member: true, Role: crypto.RoleAdmin}, Colleagues: cs})
	mustContain(t, m, "op1 · epoch 2 · 3 members · you: admin")
	key(t, m, "ctrl+s")
	alice := crypto.SafetyNumber(ids[0].PublicKey(), ids[1].PublicKey())
	mustContain(t, m, "SAFETY NUMBERS", "Safety number with Alice:", alice, crypto.Fingerprint(ids[2].PublicKey()), "(you)")
	key(t, m, "down")
	mustContain(t, m, "Safety number with Carol:", crypto.SafetyNumber(ids[0].PublicKey(), ids[2].PublicKey()))
	key(t, m, "up")
	key(t, m, "up")
	mustContain(t, m, "This is you. Your fingerprint: "+crypto.Fingerprint(ids[0].PublicKey()))
	// Typing in the view does not reach the input.
	typeText(m, "x")
	key(t, m, "esc")
	mustNotContain(t, m, "SAFETY NUMBERS", "> x")
}

// Open tasks are listed flash first; ctrl+a acknowledges the top one
// through the Backend ("understood"), once; the next press takes the next
// task; /done and /unable close a task in hand; /task sends one.
func TestModelTasksAck(t *testing.T) {
	be := &fakeBackend{}
	m := New(be, Options{Ops: []string{"op1", "op2"}, Width: 140, Height: 24})
	key(t, m, "ctrl+a")
	if len(be.acks) != 0 {
		t.Fatal("ack with no task")
	}
	mustContain(t, m, "no task to acknowledge")
	m.Update(TasksMsg{Op: "op1", Tasks: []Task{
		{Op: "op1", ID: "aaaa1111", Short: "aaaa1111", From: "Centre", Verified: true, Priority: wire.ClassRoutine, Text: "check gate 4", TimeMS: 1},
		{Op: "op1", ID: "0000ffff", Short: "0000ffff", From: "me", Verified: true, Own: true, Text: "my task", Received: 2, AckedBy: 1, OverdueCount: 1, Members: 3},
	}})
	m.Update(TasksMsg{Op: "op2", Tasks: []Task{
		{Op: "op2", ID: "ffff2222", Short: "ffff2222", From: "Centre", Verified: true, Priority: wire.ClassFlash, Text: "evacuate", TimeMS: 5, DueMS: 1_700_000_000_000, Overdue: true},
		{Op: "op2", ID: "dddd3333", Short: "dddd3333", From: "Centre", Verified: true, Priority: wire.ClassFlash, Text: "old", TimeMS: 2, State: TaskDone},
	}})
	s := screen(m)
	flash, routine := strings.Index(s, "FLASH     ffff2222 op2  Centre✓: evacuate  due "), strings.Index(s, "ROUTINE   aaaa1111 op1  Centre✓: check gate 4")
	if flash < 0 || routine < 0 || flash > routine {
		t.Fatalf("tasks not listed flash first:\n%s", s)
	}
	mustContain(t, m, "TASKS: 2 to acknowledge", "OVERDUE", "sent by you 0000ffff op1: my task · received 2/3 · acknowledged 1/3 · 1 overdue")
	mustNotContain(t, m, "Centre✓: old")
	key(t, m, "ctrl+a")
	if len(be.acks) != 1 || be.acks[0] != "op2/ffff2222=understood" {
		t.Fatalf("acks %v", be.acks)
	}
	mustContain(t, m, "evacuate  due ", "[understood…]")
	key(t, m, "ctrl+a")
	if len(be.acks) != 2 || be.acks[1] != "op1/aaaa1111=understood" {
		t.Fatalf("acks %v", be.acks)
	}
	key(t, m, "ctrl+a") // both on their way: nothing more
	if len(be.acks) != 2 {
		t.Fatalf("acks %v", be.acks)
	}
	// The flash task's acknowledgement reaches the log: it is in hand.
	m.Update(TasksMsg{Op: "op2", Tasks: []Task{{Op: "op2", ID: "ffff2222", Short: "ffff2222", From: "Centre", Verified: true, Priority: wire.ClassFlash, Text: "evacuate", State: TaskUnderstood}}})
	mustContain(t, m, "TASKS: 1 to acknowledge", "evacuate  (understood)")
	mustNotContain(t, m, "[understood…]  (understood)")
	// A failed ack can be retried.
	be.err = errors.New("offline")
	m.Update(ackedMsg{op: "op1", id: "aaaa1111", state: TaskUnderstood, err: be.err})
	mustContain(t, m, "acknowledgement not sent: offline")
	be.err = nil
	key(t, m, "ctrl+a")
	if len(be.acks) != 3 || be.acks[2] != "op1/aaaa1111=understood" {
		t.Fatalf("acks %v", be.acks)
	}
	// /done closes the task in hand; /unable takes a task by id prefix.
	typeText(m, "/done")
	key(t, m, "enter")
	if len(be.acks) != 4 || be.acks[3] != "op2/ffff2222=done" {
		t.Fatalf("acks %v", be.acks)
	}
	typeText(m, "/unable zzzz")
	key(t, m, "enter")
	mustContain(t, m, `0 of your tasks match "zzzz"`)
	if len(be.acks) != 4 {
		t.Fatalf("acks %v", be.acks)
	}
	// /task sends a task to the operation on screen.
	typeText(m, "/task urgent now")
	key(t, m, "enter")
	mustContain(t, m, "usage: /task flash|immediate|routine TEXT")
	key(t, m, "esc")
	typeText(m, "/task immediate secure the perimeter")
	key(t, m, "enter")
	if len(be.tasks) != 1 || be.tasks[0] != "op1/immediate/secure the perimeter" {
		t.Fatalf("tasks %v", be.tasks)
	}
	mustContain(t, m, "task sent to op1")
}

// Any window size renders without panicking, scrolling stays in range.
func TestModelSizesAndScroll(t *testing.T) {
	quits := 0
	m := New(&fakeBackend{}, Options{Ops: []string{"op1"}, OnQuit: func() { quits++ }})
	var es []session.Entry
	for i := 1; i <= 100; i++ {
		es = append(es, msgEntry(uint64(i), "Alice", strings.Repeat("word ", i%30)+"#"+string(rune('a'+i%26))))
	}
	m.Update(HistoryMsg{Op: "op1", Entries: es})
	for w := 0; w < 130; w += 13 {
		for h := 0; h < 40; h += 7 {
			m.Update(tea.WindowSizeMsg{Width: w, Height: h})
			_ = m.View()
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 20})
	last := screen(m)
	key(t, m, "pgup")
	if screen(m) == last {
		t.Fatal("pgup did not scroll")
	}
	for range 60 {
		key(t, m, "pgup")
	}
	mustContain(t, m, "Alice ✓ word #b") // the first entry
	for range 60 {
		key(t, m, "pgdown")
	}
	if screen(m) != last {
		t.Fatal("pgdown did not return to the bottom")
	}
	_, cmd := m.Update(press("ctrl+c"))
	if cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c does not quit")
	}
	m.Update(press("ctrl+q"))
	if m.View().Content != "" || quits != 1 {
		t.Fatalf("view after quit %q, OnQuit called %d times", m.View().Content, quits)
	}
}
