package session

import (
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// A centre member tasks the operation; officers acknowledge; everyone's
// status computation agrees; overdue follows the clock; officers cannot
// task, not even by hiding a task in a plain message.
func TestTaskRound(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	bob := newPerson(t, srv, "bob", Options{})
	carol := newPerson(t, srv, "carol", Options{})
	dave := newPerson(t, srv, "dave", Options{})
	const op = "tasking"
	if _, err := alice.s.CreateOp(ctxT(t), op, []crypto.Invite{
		{Token: bob.id.Token(), Role: crypto.RoleOfficer},
		{Token: carol.id.Token(), Role: crypto.RoleOfficer},
		{Token: dave.id.Token(), Role: crypto.RoleCentre},
	}); err != nil {
		t.Fatal(err)
	}
	due := alice.now.Now().Add(time.Hour)
	tr, err := alice.s.SendTask(ctxT(t), op, wire.ClassFlash, "Secure gate 4", TaskOptions{Due: due})
	if err != nil {
		t.Fatal(err)
	}
	if k := srv.Kinds(op); k[len(k)-1] != wire.KindTask {
		t.Fatalf("task published as %v", k[len(k)-1])
	}
	if strings.Contains(string(srv.Entries(op)[tr.Seq-1]), "Secure gate 4") {
		t.Fatal("task plaintext on the relay")
	}
	// bob answers by id prefix, then by sequence; the latest counts.
	if _, err := bob.s.AckTask(ctxT(t), op, tr.ID.Short(), AckReceived, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.s.AckTask(ctxT(t), op, strconv.FormatUint(tr.Seq, 10), AckDone, "gate closed"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.s.AckTask(ctxT(t), op, "ffffffff", AckDone, ""); !errors.Is(err, ErrNoTask) {
		t.Fatalf("ack of an unknown task: %v", err)
	}
	// Officers may not task; a task hidden in a plain message is not tracked.
	if _, err := bob.s.SendTask(ctxT(t), op, wire.ClassRoutine, "bogus", TaskOptions{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("officer task: %v", err)
	}
	forged := pendingMsg{Kind: uint8(wire.KindMessage), Type: TypeTask, Text: "forged", TaskID: make([]byte, TaskIDLen)}
	if _, err := carol.s.send(ctxT(t), op, forged, nil); err != nil {
		t.Fatal(err)
	}
	// dave (centre) reads the status.
	dave.sync(t, op)
	ts, err := dave.s.Tasks(op, Delivery{carol.id.PublicKey(): tr.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 {
		t.Fatalf("%d tasks, want 1 (the forged one must not count): %+v", len(ts), ts)
	}
	task := ts[0]
	if task.ID != tr.ID || task.Priority != wire.ClassFlash || task.Text != "Secure gate 4" || task.SenderName != "alice" || !task.Due.Equal(time.UnixMilli(due.UnixMilli())) {
		t.Fatalf("task %+v", task)
	}
	byName := map[string]MemberTask{}
	for _, m := range task.Members {
		byName[m.Name] = m
	}
	if len(byName) != 3 || byName["alice"].Name != "" {
		t.Fatalf("members %+v (the sender is not listed)", task.Members)
	}
	if b := byName["bob"]; b.State != AckDone || b.Note != "gate closed" || !b.Delivered || b.Overdue {
		t.Fatalf("bob %+v", b)
	}
	if c := byName["carol"]; c.State != AckNone || !c.Delivered || !c.DeliveryKnown || c.Overdue {
		t.Fatalf("carol %+v", c)
	}
	if d := byName["dave"]; d.DeliveryKnown || d.Delivered {
		t.Fatalf("dave %+v", d)
	}
	hist := dave.history(t, op)
	var warned bool
	for _, e := range hist {
		if e.Text == "forged" && len(e.Warnings) == 1 && strings.Contains(e.Warnings[0], "not tracked") && e.TaskID == nil {
			warned = true
		}
	}
	if !warned {
		t.Fatal("the forged task carries no warning")
	}
	// Past the due time, those who have not answered done or unable are overdue.
	dave.now.add(2 * time.Hour)
	ts, err = dave.s.Tasks(op, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, a, o := ts[0].Counts()
	if d != 1 || a != 1 || o != 2 {
		t.Fatalf("delivered %d acked %d overdue %d, want 1 1 2", d, a, o)
	}
	// The sender's own view agrees.
	alice.sync(t, op)
	ts2, err := alice.s.Tasks(op, nil)
	if err != nil || len(ts2) != 1 || ts2[0].ID != tr.ID {
		t.Fatalf("alice's tasks %+v %v", ts2, err)
	}
	if _, err := bob.s.AckTask(ctxT(t), op, tr.ID.String(), AckState(9), ""); err == nil {
		t.Fatal("invalid state accepted")
	}
}

func TestComputeTasksRules(t *testing.T) {
	ids := make([]*crypto.Identity, 3)
	var invites []crypto.Invite
	for i := range ids {
		id, err := crypto.NewIdentity(rand.Reader, "m"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		if i > 0 {
			invites = append(invites, crypto.Invite{Token: id.Token(), Role: crypto.RoleOfficer})
		}
	}
	g, _, err := crypto.NewGroup(rand.Reader, ids[0], "op", invites)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	r := g.Roster()
	k := func(i int) []byte { b := ids[i].PublicKey(); return b[:] }
	tid := make([]byte, TaskIDLen)
	tid[0] = 1
	stranger := make([]byte, 32)
	entries := []Entry{
		{Seq: 2, Kind: EntryMessage, Sender: k(0), Type: TypeTask, TaskID: tid, Priority: wire.ClassImmediate, DueMS: 1000, TimeMS: 10},
		{Seq: 3, Kind: EntryMessage, Sender: k(1), Type: TypeTask, TaskID: tid, Text: "a second task with the same id is ignored"},
		{Seq: 4, Kind: EntryMessage, Sender: k(1), Type: TypeAck, TaskID: tid, State: AckDone},
		{Seq: 5, Kind: EntryMessage, Sender: k(1), Type: TypeAck, TaskID: tid, State: AckUnderstood},
		{Seq: 6, Kind: EntryMessage, Sender: stranger, Type: TypeAck, TaskID: tid, State: AckDone},
		{Seq: 7, Kind: EntryRejected, Sender: k(2), Type: TypeAck, TaskID: tid, State: AckDone},
	}
	ts := ComputeTasks(entries, r, nil, time.UnixMilli(1001))
	if len(ts) != 1 || ts[0].Seq != 2 || len(ts[0].Members) != 2 {
		t.Fatalf("tasks %+v", ts)
	}
	var m1, m2 MemberTask
	for _, m := range ts[0].Members {
		switch m.Member {
		case [32]byte(k(1)):
			m1 = m
		case [32]byte(k(2)):
			m2 = m
		}
	}
	if m1.State != AckUnderstood || m1.AckSeq != 5 || !m1.Overdue {
		t.Fatalf("m1 %+v: the latest ack counts, and understood is still overdue", m1)
	}
	if m2.State != AckNone || !m2.Overdue || m2.DeliveryKnown {
		t.Fatalf("m2 %+v: a rejected entry counts for nothing", m2)
	}
	if ts := ComputeTasks(entries, r, nil, time.UnixMilli(1000)); ts[0].Members[0].Overdue || ts[0].Members[1].Overdue {
		t.Fatal("overdue at exactly the due time")
	}
	// The delivery table: m1's acknowledgement implies delivery whatever
	// the table says; applied afterwards it gives what computing with it
	// gives.
	d := Delivery{[32]byte(k(1)): 1, [32]byte(k(2)): 2}
	with := ComputeTasks(entries, r, d, time.UnixMilli(1001))
	if ms := with[0].Members; !ms[0].Delivered || !ms[0].DeliveryKnown || !ms[1].Delivered || !ms[1].DeliveryKnown {
		t.Fatalf("members with the delivery table %+v", ms)
	}
	early := ComputeTasks(entries, r, Delivery{[32]byte(k(2)): 1}, time.UnixMilli(1001))[0].Members
	if i := slices.IndexFunc(early, func(m MemberTask) bool { return m.Member == [32]byte(k(2)) }); i < 0 || early[i].Delivered || !early[i].DeliveryKnown {
		t.Fatalf("m2 was sent only sequence 1, before the task: %+v", early)
	}
	later := ComputeTasks(entries, r, nil, time.UnixMilli(1001))
	ApplyDelivery(later, d)
	if !reflect.DeepEqual(later, with) {
		t.Fatalf("applied afterwards %+v, computed with %+v", later, with)
	}
}

func TestAckStateParse(t *testing.T) {
	for _, s := range []string{"received", "understood", "done", "unable"} {
		a, err := ParseAckState(s)
		if err != nil || a.String() != s || !a.Valid() {
			t.Fatalf("%s: %v %v", s, a, err)
		}
	}
	if _, err := ParseAckState("maybe"); err == nil {
		t.Fatal("parsed maybe")
	}
}

func TestParsePriority(t *testing.T) {
	for _, c := range []wire.Class{wire.ClassRoutine, wire.ClassImmediate, wire.ClassFlash} {
		if got, err := ParsePriority(c.String()); err != nil || got != c {
			t.Fatalf("%s: %v %v", c, got, err)
		}
	}
	for _, s := range []string{"", "FLASH", "urgent", "class(3)"} {
		if _, err := ParsePriority(s); err == nil {
			t.Fatalf("parsed %q", s)
		}
	}
}

// One session follows two operations over one connection; SyncAll catches
// both up; Presence reports the fake relay's table.
func TestSeveralOperationsOneConnection(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	bob := newPerson(t, srv, "bob", Options{})
	ops := []string{"op-a", "op-b"}
	for _, op := range ops {
		if _, err := alice.s.CreateOp(ctxT(t), op, []crypto.Invite{{Token: bob.id.Token(), Role: crypto.RoleOfficer}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := bob.s.SyncAll(ctxT(t), ops)
	if err != nil || len(got["op-a"]) != 1 || len(got["op-b"]) != 1 {
		t.Fatalf("SyncAll %v %v", got, err)
	}
	before := srv.Handshakes()
	ctx, cancel := context.WithCancel(ctxT(t))
	seen := make(chan OpEntry, 8)
	done := make(chan error, 1)
	go func() { done <- bob.s.FollowAll(ctx, ops, func(e OpEntry) { seen <- e }) }()
	// Follow starts after the last processed entry, so whether the sends
	// land before or after the subscriptions, both are followed.
	alice.send(t, "op-b", "to b")
	alice.send(t, "op-a", "to a")
	texts := map[string]string{}
	for len(texts) < 2 {
		select {
		case e := <-seen:
			texts[e.Op] = e.Text
		case <-time.After(20 * time.Second):
			t.Fatalf("followed %v", texts)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if texts["op-a"] != "to a" || texts["op-b"] != "to b" {
		t.Fatalf("followed %v", texts)
	}
	if srv.Handshakes() != before {
		t.Fatal("following opened another connection")
	}
	p, err := alice.s.Presence(ctxT(t), "op-a")
	if err != nil {
		t.Fatal(err)
	}
	if p.Op != "op-a" {
		t.Fatalf("presence %+v", p)
	}
	if _, err := New(t.TempDir(), alice.id, nil, Options{}).Presence(ctxT(t), "op-a"); !errors.Is(err, ErrNoPresence) {
		t.Fatalf("presence without a relay: %v", err)
	}
}
