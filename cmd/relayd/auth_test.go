package main

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// Raw WebSocket tests of the rules of authentication and access (issue 5,
// items 1 and 7): each is refused with its documented code, another
// connection carries on, and the operation's log does not change.

// closedNode starts a node with access control as in production (no
// OpenOps).
func closedNode(t *testing.T, tweak func(*config)) *node {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.OpenOps = false
	if tweak != nil {
		tweak(&cfg)
	}
	n := startNode(t, cfg)
	t.Cleanup(func() { n.close() })
	return n
}

// dialHello connects to n without authenticating and returns the hello.
func dialHello(t *testing.T, n *node) (*rawConn, *wire.Hello) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	h, err := relaytest.ReadHello(ws)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, ws: ws}, h
}

// expectRefusal reads an error frame with code, then a close with
// closeCode (0: the connection must stay open).
func (c *rawConn) expectRefusal(code wire.Code, closeCode int) *wire.Error {
	c.t.Helper()
	for {
		f, err := c.tryRead()
		if err != nil {
			c.t.Fatalf("want error %s, got %v", code, err)
		}
		if _, ok := f.(*wire.Deliver); ok {
			continue
		}
		e, ok := f.(*wire.Error)
		if !ok || e.Code != code {
			c.t.Fatalf("got %#v, want error %s", f, code)
		}
		if closeCode != 0 {
			if _, err := c.tryRead(); !websocket.IsCloseError(err, closeCode) {
				c.t.Fatalf("want close %d after %s, got %v", closeCode, code, err)
			}
		}
		return e
	}
}

// publishKind sends a publish of kind and returns the ack or error frame.
func (c *rawConn) publishKind(req uint64, op string, kind wire.Kind, entry []byte) wire.Frame {
	c.t.Helper()
	c.send(&wire.Publish{Req: req, Op: op, MsgID: newMsgID(), Kind: kind, Envelope: entry})
	for {
		switch f := c.read().(type) {
		case *wire.Ack, *wire.Error:
			return f
		}
	}
}

// opFixture is an operation with a roster: alice admin, carol centre, bob
// officer, created by alice over a raw connection.
type opFixture struct {
	op                 string
	alice, bob, carol  *crypto.Identity
	ga, gb, gc         *crypto.Group
	genesis            []byte
	aliceC, bobC, carC *rawConn
}

func newOpFixture(t *testing.T, n *node, op string) *opFixture {
	t.Helper()
	f := &opFixture{op: op, alice: relaytest.NewIdentity("alice"), bob: relaytest.NewIdentity("bob"), carol: relaytest.NewIdentity("carol")}
	var err error
	f.ga, f.genesis, err = crypto.NewGroup(rand.Reader, f.alice, op, []crypto.Invite{
		{Token: f.bob.Token(), Role: crypto.RoleOfficer}, {Token: f.carol.Token(), Role: crypto.RoleCentre}})
	if err != nil {
		t.Fatal(err)
	}
	if f.gb, err = crypto.JoinGroup(f.bob, [][]byte{f.genesis}); err != nil {
		t.Fatal(err)
	}
	if f.gc, err = crypto.JoinGroup(f.carol, [][]byte{f.genesis}); err != nil {
		t.Fatal(err)
	}
	addr := n.addr.String()
	f.aliceC, f.bobC, f.carC = dialRawAs(t, addr, f.alice), dialRawAs(t, addr, f.bob), dialRawAs(t, addr, f.carol)
	if a, ok := f.aliceC.publishKind(1, op, wire.KindCommit, f.genesis).(*wire.Ack); !ok || a.Seq != 1 {
		t.Fatalf("genesis not accepted")
	}
	return f
}

// seal returns an envelope sealed by g at the operation's first entry.
func seal(t *testing.T, g *crypto.Group, f *opFixture, text string) []byte {
	t.Helper()
	env, err := g.Seal([]byte(text), crypto.NewLogHead(1, crypto.LogChain([32]byte{}, 1, f.genesis)))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// carriesOn checks that another, authorised connection still works: alice
// publishes a message and reads it back.
func (f *opFixture) carriesOn(t *testing.T, n *node) {
	t.Helper()
	before := n.cluster.Head(f.op).Last
	a, ok := f.aliceC.publishKind(9, f.op, wire.KindMessage, seal(t, f.ga, f, "still here")).(*wire.Ack)
	if !ok || a.Seq != before+1 {
		t.Fatalf("alice's publish after the refusal: %#v", a)
	}
}

func refusedCount(n *node, reason string) uint64 { return n.relay.Stats().Refused[reason] }

func authFailures(n *node, reason string) uint64 { return n.relay.Stats().AuthFailures[reason] }

func TestAuthWrongSignature(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-sig")
	head := n.cluster.Head(f.op)
	alice, mallory := f.alice, relaytest.NewIdentity("mallory")
	c, h := dialHello(t, n)
	a, err := relaytest.Auth(h, mallory, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Identity = alice.Token().Marshal() // claims alice, signed by mallory
	c.send(a)
	c.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	if authFailures(n, "bad_signature") != 1 {
		t.Fatalf("auth failures %v", n.relay.Stats().AuthFailures)
	}
	// Signed for another node: also refused.
	c2, h2 := dialHello(t, n)
	h2.Node = "another-node"
	a2, _ := relaytest.Auth(h2, alice, nil)
	c2.send(a2)
	c2.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	// No identity at all.
	c3, _ := dialHello(t, n)
	c3.send(&wire.Auth{Version: wire.Version})
	c3.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	// A bound signature on a connection without TLS.
	c4, h4 := dialHello(t, n)
	a4, _ := relaytest.Auth(h4, alice, make([]byte, crypto.ChannelBindingSize))
	c4.send(a4)
	c4.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	st := n.relay.Stats().AuthFailures
	if st["bad_signature"] != 2 || st["anonymous"] != 1 || st["binding"] != 1 {
		t.Fatalf("auth failures %v", st)
	}
	if n.cluster.Head(f.op) != head {
		t.Fatal("the log changed")
	}
	// Alice's own connection carries on.
	f.carriesOn(t, n)
}

func TestAuthReplayedChallenge(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-replay")
	head := n.cluster.Head(f.op)
	alice := f.alice
	first, h := dialHello(t, n)
	a, err := relaytest.Auth(h, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	first.send(a)
	if _, ok := first.read().(*wire.Welcome); !ok {
		t.Fatal("no welcome")
	}
	// The same auth frame on another connection (another challenge).
	replay, _ := dialHello(t, n)
	replay.send(a)
	replay.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	// And a second time on the first connection.
	first.send(a)
	first.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	st := n.relay.Stats().AuthFailures
	if st["bad_signature"] != 1 || st["second_auth"] != 1 {
		t.Fatalf("auth failures %v", st)
	}
	if n.cluster.Head(f.op) != head {
		t.Fatal("the log changed")
	}
	f.carriesOn(t, n)
}

func TestAuthExpiredChallenge(t *testing.T) {
	const ttl = time.Second // long enough for the other handshakes on a loaded machine
	n := closedNode(t, func(c *config) { c.relay.ChallengeTTL = ttl })
	f := newOpFixture(t, n, "op-expiry")
	head := n.cluster.Head(f.op)
	alice := f.alice
	c, h := dialHello(t, n)
	a, err := relaytest.Auth(h, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The expiry itself is what is tested: let the challenge's lifetime pass.
	time.Sleep(ttl + 200*time.Millisecond)
	c.send(a)
	c.expectRefusal(wire.CodeUnauthenticated, wire.CloseAuth)
	if authFailures(n, "expired") != 1 {
		t.Fatalf("auth failures %v", n.relay.Stats().AuthFailures)
	}
	if n.cluster.Head(f.op) != head {
		t.Fatal("the log changed")
	}
	// A fresh connection gets in, and alice's first one carries on.
	dialRawAs(t, n.addr.String(), alice)
	f.carriesOn(t, n)
}

func TestNonMemberSubscribeAndPublish(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-members")
	head := n.cluster.Head(f.op)
	mallory := dialRawAs(t, n.addr.String(), relaytest.NewIdentity("mallory"))
	mallory.send(&wire.Subscribe{Req: 1, Op: f.op, From: 1})
	if e := mallory.expectRefusal(wire.CodeForbidden, 0); e.Req != 1 {
		t.Fatalf("refusal for req %d", e.Req)
	}
	// A member's envelope re-published by a non-member.
	if e, ok := mallory.publishKind(2, f.op, wire.KindMessage, seal(t, f.gb, f, "stolen")).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("non-member publish: %#v", e)
	}
	if refusedCount(n, "not_member") != 2 {
		t.Fatalf("refused %v", n.relay.Stats().Refused)
	}
	if n.cluster.Head(f.op) != head {
		t.Fatal("the log changed")
	}
	// The refused connection stays open and may use operations it may.
	mallory.send(&wire.Subscribe{Req: 3, Op: "no-roster", From: 1})
	mallory.expectRefusal(wire.CodeForbidden, 0) // no roster, no OpenOps
	// Members carry on: bob subscribes and reads the genesis.
	f.bobC.subscribe(f.op, 1)
	f.bobC.collect(f.op, 1, 1)
	f.carriesOn(t, n)
}

func TestSenderMustBeThePublisher(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-sender")
	head := n.cluster.Head(f.op)
	// Carol (a member) publishes an envelope sealed by bob.
	if e, ok := f.carC.publishKind(1, f.op, wire.KindMessage, seal(t, f.gb, f, "bob's words")).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("publish of another member's envelope: %#v", e)
	}
	if refusedCount(n, "sender") != 1 || n.cluster.Head(f.op) != head {
		t.Fatal("not refused as sender mismatch, or the log changed")
	}
	f.carriesOn(t, n)
}

func TestOfficerSendingTasking(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-tasking")
	head := n.cluster.Head(f.op)
	if e, ok := f.bobC.publishKind(1, f.op, wire.KindTask, seal(t, f.gb, f, "task from an officer")).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("officer task: %#v", e)
	}
	if refusedCount(n, "task_role") != 1 || n.cluster.Head(f.op) != head {
		t.Fatalf("refused %v, head %v -> %v", n.relay.Stats().Refused, head, n.cluster.Head(f.op))
	}
	// The officer's own messages still go through, and centre sends tasks.
	if _, ok := f.bobC.publishKind(2, f.op, wire.KindMessage, seal(t, f.gb, f, "a message")).(*wire.Ack); !ok {
		t.Fatal("officer message refused")
	}
	if _, ok := f.carC.publishKind(1, f.op, wire.KindTask, seal(t, f.gc, f, "a task")).(*wire.Ack); !ok {
		t.Fatal("centre task refused")
	}
	f.carriesOn(t, n)
}

func TestOfficerChangingTheRoster(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-roster")
	head := n.cluster.Head(f.op)
	// Bob builds, on his own copy of the roster, a commit adding mallory.
	mallory := relaytest.NewIdentity("mallory")
	fake, _, err := crypto.NewGroup(rand.Reader, f.bob, f.op, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := fake.Commit(rand.Reader, crypto.AddMember(mallory.Token(), crypto.RoleAdmin))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := f.bobC.publishKind(1, f.op, wire.KindCommit, commit).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("officer commit: %#v", e)
	}
	// A commit signed by alice, published by bob.
	aliceCommit, err := f.ga.Commit(rand.Reader, crypto.RemoveMember(f.carol.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := f.bobC.publishKind(2, f.op, wire.KindCommit, aliceCommit).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("relayed commit: %#v", e)
	}
	st := n.relay.Stats().Refused
	if st["commit_role"] != 1 || st["sender"] != 1 || n.cluster.Head(f.op) != head {
		t.Fatalf("refused %v, head changed %v", st, n.cluster.Head(f.op) != head)
	}
	// An officer may commit a key update of its own leaf.
	ku, err := f.gb.Commit(rand.Reader, crypto.KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.bobC.publishKind(3, f.op, wire.KindCommit, ku).(*wire.Ack); !ok {
		t.Fatal("officer key update refused")
	}
	// And the admin's own commit goes through.
	if err := f.ga.ProcessCommit(ku); err != nil {
		t.Fatal(err)
	}
	ac, err := f.ga.Commit(rand.Reader, crypto.RemoveMember(f.carol.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.aliceC.publishKind(4, f.op, wire.KindCommit, ac).(*wire.Ack); !ok {
		t.Fatal("admin commit refused")
	}
}

func TestNoRosterAcceptsOnlyGenesis(t *testing.T) {
	n := closedNode(t, nil)
	c := dialRawAs(t, n.addr.String(), nil)
	if e, ok := c.publishKind(1, "fresh", wire.KindMessage, []byte("raw")).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("raw publish on an operation without roster: %#v", e)
	}
	// A genesis signed by someone else than the publisher.
	alice := relaytest.NewIdentity("alice")
	_, gen, err := crypto.NewGroup(rand.Reader, alice, "fresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := c.publishKind(2, "fresh", wire.KindCommit, gen).(*wire.Error); !ok || e.Code != wire.CodeForbidden {
		t.Fatalf("genesis by another: %#v", e)
	}
	if n.cluster.Head("fresh").Last != 0 {
		t.Fatal("the log changed")
	}
	if _, ok := dialRawAs(t, n.addr.String(), alice).publishKind(1, "fresh", wire.KindCommit, gen).(*wire.Ack); !ok {
		t.Fatal("genesis by its signer refused")
	}
}

// A member removed from the roster loses its live subscription right after
// it is sent the commit that removed it, and cannot subscribe again.
func TestRemovedMemberLosesSubscription(t *testing.T) {
	n := closedNode(t, nil)
	f := newOpFixture(t, n, "op-remove")
	f.carC.subscribe(f.op, 1)
	f.carC.collect(f.op, 1, 1)
	rm, err := f.ga.Commit(rand.Reader, crypto.RemoveMember(f.carol.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := f.aliceC.publishKind(1, f.op, wire.KindCommit, rm).(*wire.Ack)
	if !ok {
		t.Fatal("removal refused")
	}
	if got := f.carC.collect(f.op, a.Seq, a.Seq); !bytes.Equal(got[0], rm) {
		t.Fatal("carol was not sent the commit that removed her")
	}
	if e := f.carC.expectRefusal(wire.CodeForbidden, 0); e.Op != f.op || e.Req != 0 {
		t.Fatalf("end of subscription: %+v", e)
	}
	f.carC.send(&wire.Subscribe{Req: 2, Op: f.op, From: 1})
	f.carC.expectRefusal(wire.CodeForbidden, 0)
	if st := n.relay.Stats().Refused; st["removed"] != 1 || st["not_member"] != 1 {
		t.Fatalf("refused %v", st)
	}
	// Bob, still a member, keeps reading.
	f.bobC.subscribe(f.op, 1)
	f.bobC.collect(f.op, 1, a.Seq)
}
