package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"liaison/clients"
	"liaison/clients/fakerelay"
	"liaison/crypto"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type person struct {
	name string
	home string
	id   *crypto.Identity
	c    *clients.Client
	s    *Session
	now  *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, srv *fakerelay.Server, id *crypto.Identity) *clients.Client {
	t.Helper()
	c, err := clients.Dial(ctxT(t), []string{srv.URL}, clients.Options{Identity: id, ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newPerson(t *testing.T, srv *fakerelay.Server, name string, opts Options) *person {
	t.Helper()
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	p := &person{name: name, home: t.TempDir(), id: id, now: &clock{t: time.UnixMilli(1_700_000_000_000)}}
	p.connect(t, srv, opts)
	return p
}

// connect gives p a new relay connection and a new Session over the same
// home: what a new process of the CLI does.
func (p *person) connect(t *testing.T, srv *fakerelay.Server, opts Options) {
	t.Helper()
	p.c = dial(t, srv, p.id)
	if opts.KeyUpdateAfter == 0 {
		opts.KeyUpdateAfter = -1
	}
	if opts.Now == nil {
		opts.Now = p.now.Now
	}
	p.s = New(p.home, p.id, p.c, opts)
}

func (p *person) history(t *testing.T, op string) []Entry {
	t.Helper()
	h, err := p.s.History(op, 1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (p *person) sync(t *testing.T, op string) []Entry {
	t.Helper()
	es, err := p.s.Sync(ctxT(t), op)
	if err != nil {
		t.Fatalf("%s sync: %v", p.name, err)
	}
	return es
}

func (p *person) send(t *testing.T, op, text string) SendResult {
	t.Helper()
	r, err := p.s.Send(ctxT(t), op, text, wire.ClassRoutine)
	if err != nil {
		t.Fatalf("%s send: %v", p.name, err)
	}
	return r
}

func kinds(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(map[EntryKind]string{EntryMessage: "M", EntryOwn: "O", EntryCommit: "C", EntryBeforeJoin: "B", EntryNotMember: "N", EntryRejected: "R"}[e.Kind])
	}
	return b.String()
}

func texts(es []Entry) []string {
	var out []string
	for _, e := range es {
		if e.Text != "" {
			out = append(out, e.Text)
		}
	}
	return out
}

func newServer(t *testing.T) *fakerelay.Server {
	s := fakerelay.New("n1")
	t.Cleanup(s.Close)
	return s
}

func TestCreateSendReadOwn(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	es, err := alice.s.CreateOp(ctxT(t), "op1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if kinds(es) != "C" || !strings.Contains(es[0].Summary, "you created operation op1") || !strings.Contains(es[0].Summary, "you joined") {
		t.Fatalf("create entries %+v", es)
	}
	if k := srv.Kinds("op1"); len(k) != 1 || k[0] != wire.KindCommit {
		t.Fatalf("kinds %v", k)
	}
	r := alice.send(t, "op1", "hello there")
	if r.Seq != 2 || r.Index != 0 || r.Epoch != 0 {
		t.Fatalf("send result %+v", r)
	}
	if bytes.Contains(srv.Entries("op1")[1], []byte("hello there")) {
		t.Fatal("plaintext on the relay")
	}
	// A new process reads it back from the local history.
	alice.connect(t, srv, Options{})
	alice.sync(t, "op1")
	h := alice.history(t, "op1")
	if kinds(h) != "CO" || h[1].Text != "hello there" || h[1].Seq != 2 || !h[1].Verified() || h[1].SenderName != "alice" {
		t.Fatalf("history %+v", h)
	}
	if _, err := alice.s.CreateOp(ctxT(t), "op1", nil); !errors.Is(err, ErrOpExists) {
		t.Fatalf("second create: %v", err)
	}
	// Another identity cannot create the same operation on the relay.
	mallory := newPerson(t, srv, "mallory", Options{})
	if _, err := mallory.s.CreateOp(ctxT(t), "op1", nil); !errors.Is(err, ErrOpExists) {
		t.Fatalf("create over existing: %v", err)
	}
	ops, err := alice.s.Ops()
	if err != nil || len(ops) != 1 || ops[0].Op != "op1" || !ops[0].Member || ops[0].Role != crypto.RoleAdmin || ops[0].Seq != 2 {
		t.Fatalf("ops %+v %v", ops, err)
	}
}

// setupPair: alice creates op, sends "before", adds bob; bob syncs.
func setupPair(t *testing.T, srv *fakerelay.Server, op string) (alice, bob *person) {
	t.Helper()
	alice = newPerson(t, srv, "alice", Options{})
	bob = newPerson(t, srv, "bob", Options{})
	if _, err := alice.s.CreateOp(ctxT(t), op, nil); err != nil {
		t.Fatal(err)
	}
	alice.send(t, op, "before bob")
	es, err := alice.s.Add(ctxT(t), op, bob.id.Token(), crypto.RoleOfficer)
	if err != nil {
		t.Fatal(err)
	}
	if kinds(es) != "C" || !strings.Contains(es[0].Summary, "you added bob (officer) — epoch 1") {
		t.Fatalf("add entries %+v", es)
	}
	return alice, bob
}

func TestJoinReadsOnlyAfterAdded(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op2")
	alice.send(t, "op2", "after bob")
	es := bob.sync(t, "op2")
	if kinds(es) != "CBCM" {
		t.Fatalf("bob entries %s %+v", kinds(es), es)
	}
	if !strings.Contains(es[2].Summary, "alice added you (officer)") || !strings.Contains(es[2].Summary, "you joined") {
		t.Fatalf("join summary %q", es[2].Summary)
	}
	if got := texts(es); len(got) != 1 || got[0] != "after bob" || es[3].SenderName != "alice" || len(es[3].Warnings) != 0 {
		t.Fatalf("bob read %+v", es)
	}
	// And back: bob replies, alice reads it.
	bob.send(t, "op2", "hi alice")
	es = alice.sync(t, "op2")
	if kinds(es) != "M" || es[0].Text != "hi alice" || es[0].SenderName != "bob" || len(es[0].Warnings) != 0 {
		t.Fatalf("alice entries %+v", es)
	}
	// Verification codes agree.
	va, err := alice.s.Verify("op2")
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := bob.s.Verify("op2")
	if va != vb || va.Epoch != 1 || len(va.Code) != 23 {
		t.Fatalf("verify %+v vs %+v", va, vb)
	}
	r, err := bob.s.Members("op2")
	if err != nil || len(r.Members) != 2 {
		t.Fatalf("members %v %v", r, err)
	}
	m, err := ResolveMember(r, "bob")
	if err != nil || m.Key != bob.id.PublicKey() {
		t.Fatal(m, err)
	}
	if m, err := ResolveMember(r, crypto.Fingerprint(alice.id.PublicKey())[:11]); err != nil || m.Name != "alice" {
		t.Fatal(m, err)
	}
}

func TestRemovedMemberReadsNothing(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op3")
	bob.sync(t, "op3")
	bobMember, _ := bob.s.Members("op3")
	m, _ := ResolveMember(bobMember, "bob")
	if _, err := alice.s.Remove(ctxT(t), "op3", m.Key); err != nil {
		t.Fatal(err)
	}
	alice.send(t, "op3", "secret after removal")
	es := bob.sync(t, "op3")
	if kinds(es) != "CN" || !strings.Contains(es[0].Summary, "alice removed you") || !strings.Contains(es[0].Summary, "no longer a member") {
		t.Fatalf("bob entries %s %+v", kinds(es), es)
	}
	if _, err := bob.s.Send(ctxT(t), "op3", "x", wire.ClassRoutine); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removed send: %v", err)
	}
	walkHome(t, bob.home, "secret after removal")
}

func TestKeyUpdate(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op4")
	bob.sync(t, "op4")
	es, err := bob.s.KeyUpdate(ctxT(t), "op4")
	if err != nil {
		t.Fatal(err)
	}
	if kinds(es) != "C" || es[0].Summary != "you updated your key — epoch 2" {
		t.Fatalf("ku %+v", es)
	}
	alice.send(t, "op4", "epoch two")
	es = bob.sync(t, "op4")
	if kinds(es) != "M" || es[0].Text != "epoch two" || es[0].Epoch != 2 {
		t.Fatalf("bob %+v", es)
	}
	es = alice.sync(t, "op4")
	if kinds(es) != "" {
		t.Fatalf("alice %+v", es)
	}
	if h := alice.history(t, "op4"); !strings.Contains(h[3].Summary, "bob updated their key — epoch 2") {
		t.Fatalf("alice history %+v", h)
	}
}

func TestTimedKeyUpdate(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	alice.connect(t, srv, Options{KeyUpdateAfter: time.Hour})
	if _, err := alice.s.CreateOp(ctxT(t), "op5", nil); err != nil {
		t.Fatal(err)
	}
	// Just joined with the token's initial key: the first sync replaces it.
	if es := alice.sync(t, "op5"); kinds(es) != "C" || !strings.Contains(es[0].Summary, "you updated your key — epoch 1") {
		t.Fatalf("first sync %+v", es)
	}
	if es := alice.sync(t, "op5"); len(es) != 0 {
		t.Fatalf("second sync %+v", es)
	}
	alice.now.add(59 * time.Minute)
	if es := alice.sync(t, "op5"); len(es) != 0 {
		t.Fatalf("early sync %+v", es)
	}
	alice.now.add(2 * time.Minute)
	if es := alice.sync(t, "op5"); kinds(es) != "C" || es[0].Epoch != 2 {
		t.Fatalf("due sync %+v", es)
	}
}

func TestStaleHeadRetry(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	bob := newPerson(t, srv, "bob", Options{})
	carol := newPerson(t, srv, "carol", Options{})
	if _, err := alice.s.CreateOp(ctxT(t), "op6", []crypto.Invite{{Token: bob.id.Token(), Role: crypto.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	bob.sync(t, "op6")
	// Bob's key update lands while alice's add is on its way: the relay
	// answers stale_head; alice catches up, rebuilds, publishes anew.
	var bobCommit []byte
	{
		// Build bob's commit through his session but publish it from the hook.
		_, err := bob.s.withOp("op6", func(oc *opCtx) error {
			b, err := oc.g.Commit(rand.Reader, crypto.KeyUpdate())
			bobCommit = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	first := true
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		if p.Kind == wire.KindCommit && first {
			first = false
			return fakerelay.Decision{Action: fakerelay.Defer}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	type result struct {
		es  []Entry
		err error
	}
	done := make(chan result, 1)
	go func() {
		es, err := alice.s.Add(ctxT(t), "op6", carol.id.Token(), crypto.RoleCentre)
		done <- result{es, err}
	}()
	srv.Await(t, "alice's commit held", func() bool { return srv.Deferred() == 1 })
	if _, err := bob.c.Publish(ctxT(t), "op6", bobCommit, clients.WithKind(wire.KindCommit)); err != nil {
		t.Fatal(err)
	}
	srv.ReleaseDeferred() // checked now: stale
	res := <-done
	es, err := res.es, res.err
	if err != nil {
		t.Fatal(err)
	}
	if kinds(es) != "CC" || !strings.Contains(es[0].Summary, "bob updated their key — epoch 1") || !strings.Contains(es[1].Summary, "you added carol (centre) — epoch 2") {
		t.Fatalf("entries %+v", es)
	}
	var ids [][]byte
	for _, p := range srv.Publishes() {
		if p.Kind == wire.KindCommit {
			ids = append(ids, p.MsgID)
		}
	}
	// genesis, alice's held add, bob's key update, alice's rebuilt add
	if len(ids) != 4 || bytes.Equal(ids[1], ids[3]) {
		t.Fatalf("commit publishes %d", len(ids))
	}
	// Bob processes his own key update from the saved pending state.
	if es := bob.sync(t, "op6"); kinds(es) != "CC" || len(es[0].Warnings)+len(es[1].Warnings) != 0 {
		t.Fatalf("bob %+v", es)
	}
	carol.sync(t, "op6")
	alice.send(t, "op6", "all three")
	for _, p := range []*person{bob, carol} {
		if es := p.sync(t, "op6"); kinds(es) != "M" || es[0].Text != "all three" {
			t.Fatalf("%s: %+v", p.name, es)
		}
	}
}

func walkHome(t *testing.T, home string, secrets ...string) {
	t.Helper()
	n := 0
	filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%q found in %s", s, path)
			}
		}
		return nil
	})
	if n == 0 {
		t.Fatal("no files")
	}
}

func TestStateEncrypted(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op7")
	alice.send(t, "op7", "ZEBRA-CROSSING-7")
	bob.send(t, "op7", "PURPLE-MONKEY-9")
	alice.sync(t, "op7")
	bob.sync(t, "op7")
	for _, p := range []*person{alice, bob} {
		walkHome(t, p.home, "ZEBRA-CROSSING-7", "PURPLE-MONKEY-9", "before bob", "alice", "bob")
		if h := p.history(t, "op7"); len(texts(h)) < 2 {
			t.Fatalf("%s history %+v", p.name, h)
		}
	}
	// Another identity cannot read alice's state.
	other := New(alice.home, bob.id, nil, Options{})
	if _, err := other.History("op7", 1); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("foreign read: %v", err)
	}
}

func msgIndices(t *testing.T, srv *fakerelay.Server, op string) []uint32 {
	t.Helper()
	var out []uint32
	ks := srv.Kinds(op)
	for i, e := range srv.Entries(op) {
		if ks[i] == wire.KindMessage {
			h, err := crypto.ParseEnvelopeHeader(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Index)
		}
	}
	return out
}

// A send whose outcome is unknown (the process dies before the ack) has
// already saved its used key: the next send, in a new process, uses the
// next index, and the first message is re-sent with its msgid.
func TestSendCrashSafety(t *testing.T) {
	srv := newServer(t)
	alice := newPerson(t, srv, "alice", Options{})
	if _, err := alice.s.CreateOp(ctxT(t), "op8", nil); err != nil {
		t.Fatal(err)
	}
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		if p.Kind == wire.KindMessage {
			return fakerelay.Decision{Action: fakerelay.Ignore}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := alice.s.Send(ctx, "op8", "first", wire.ClassRoutine)
		errc <- err
	}()
	srv.Await(t, "the publish", func() bool { return len(srv.Publishes()) == 2 })
	cancel()
	if err := <-errc; !errors.Is(err, clients.ErrUnknownOutcome) {
		t.Fatalf("send: %v", err)
	}
	alice.c.Close() // the process ends

	srv.SetOnPublish(nil)
	alice.connect(t, srv, Options{})
	r := alice.send(t, "op8", "second")
	if r.Index != 1 {
		t.Fatalf("second send used index %d", r.Index)
	}
	if got := msgIndices(t, srv, "op8"); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("indices %v", got)
	}
	pubs := srv.Publishes()
	if !bytes.Equal(pubs[1].MsgID, pubs[2].MsgID) || !bytes.Equal(pubs[1].Envelope, pubs[2].Envelope) {
		t.Fatal("pending message not re-sent with its msgid")
	}
	if h := alice.history(t, "op8"); kinds(h) != "COO" || h[1].Text != "first" || h[2].Text != "second" {
		t.Fatalf("history %+v", h)
	}

	// A refused publish burns its index; it is not retried.
	srv.SetOnPublish(func(p *wire.Publish) fakerelay.Decision {
		return fakerelay.Decision{Action: fakerelay.Reject, Code: wire.CodeForbidden}
	})
	if _, err := alice.s.Send(ctxT(t), "op8", "refused", wire.ClassRoutine); !isCode(err, wire.CodeForbidden) {
		t.Fatalf("refused send: %v", err)
	}
	srv.SetOnPublish(nil)
	if r := alice.send(t, "op8", "third"); r.Index != 3 {
		t.Fatalf("third used index %d", r.Index)
	}
	if got := msgIndices(t, srv, "op8"); len(got) != 3 || got[2] != 3 {
		t.Fatalf("indices %v", got)
	}
}

func TestReplayFlagged(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op9")
	r := alice.send(t, "op9", "only once")
	env := srv.Entries("op9")[r.Seq-1]
	srv.Append("op9", env)
	es := bob.sync(t, "op9")
	if kinds(es) != "CBCMR" {
		t.Fatalf("bob %s %+v", kinds(es), es)
	}
	if got := texts(es); len(got) != 1 || got[0] != "only once" {
		t.Fatalf("texts %v", got)
	}
	if w := es[4].Warnings; len(w) != 1 || !strings.Contains(w[0], "replay of alice's message #0 (epoch 1)") {
		t.Fatalf("warning %v", w)
	}
	// Alice's own envelope replayed back to her is flagged too.
	es = alice.sync(t, "op9")
	if kinds(es) != "R" {
		t.Fatalf("alice %+v", es)
	}
}

// The relay shows alice and bob different histories; alice's envelope names
// the log head she saw, and bob notices it differs from his.
func TestForkDetected(t *testing.T) {
	srvA, srvB := newServer(t), newServer(t)
	alice := newPerson(t, srvA, "alice", Options{})
	bob := newPerson(t, srvB, "bob", Options{})
	if _, err := alice.s.CreateOp(ctxT(t), "op10", []crypto.Invite{{Token: bob.id.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	srvB.AppendKind("op10", wire.KindCommit, srvA.Entries("op10")[0])
	srvA.Append("op10", []byte("history one"))
	srvB.Append("op10", []byte("history two"))
	r := alice.send(t, "op10", "hello")
	srvB.Append("op10", srvA.Entries("op10")[r.Seq-1])
	es := bob.sync(t, "op10")
	if kinds(es) != "CRM" || es[2].Text != "hello" {
		t.Fatalf("bob %s %+v", kinds(es), es)
	}
	if w := es[2].Warnings; len(w) != 1 || !strings.Contains(w[0], "saw a different log at entry 2") {
		t.Fatalf("warnings %v", w)
	}
}

func TestPayloadBounds(t *testing.T) {
	b, err := EncodePayload(Payload{V: 1, Type: TypeChat, TimeMS: 5, Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := DecodePayload(b); err != nil || p.Text != "x" || p.TimeMS != 5 {
		t.Fatal(p, err)
	}
	for _, bad := range [][]byte{nil, {0xa0}, {0xbf, 0xff}, append(bytes.Clone(b), 0)} {
		if _, err := DecodePayload(bad); !errors.Is(err, ErrBadPayload) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	if _, err := EncodePayload(Payload{V: 1, Type: TypeChat, Text: strings.Repeat("a", MaxText+1)}); err == nil {
		t.Fatal("oversized text accepted")
	}
}

// A member whose state file is restored from an older copy (a device
// backup) reads its own later messages back from the log and moves its
// sending chain past them: its next message opens for the others with no
// replay or reuse of a message key.
func TestRestoredStateNeverReusesKeys(t *testing.T) {
	srv := newServer(t)
	alice, bob := setupPair(t, srv, "op-restore")
	alice.send(t, "op-restore", "before backup")
	backup, err := os.ReadFile(alice.s.statePath("op-restore"))
	if err != nil {
		t.Fatal(err)
	}
	alice.send(t, "op-restore", "after backup 1")
	alice.send(t, "op-restore", "after backup 2")
	if err := os.WriteFile(alice.s.statePath("op-restore"), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	r := alice.send(t, "op-restore", "after restore")
	if r.Index < 3 {
		t.Fatalf("sealed at ratchet index %d: a key used after the backup was used again", r.Index)
	}
	var got []string
	for _, e := range bob.sync(t, "op-restore") {
		if len(e.Warnings) > 0 {
			t.Fatalf("bob: seq %d: %v", e.Seq, e.Warnings)
		}
		if e.Kind == EntryMessage {
			got = append(got, e.Text)
		}
	}
	want := "before backup|after backup 1|after backup 2|after restore"
	if strings.Join(got, "|") != want {
		t.Fatalf("bob read %q, want %q", strings.Join(got, "|"), want)
	}
}
