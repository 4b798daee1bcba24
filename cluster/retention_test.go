package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"liaison/crypto"
)

// logChainThrough folds crypto.LogChain over entries 1..last of op, read
// before anything was compacted.
func logChainThrough(t *testing.T, all [][]byte, last uint64) [32]byte {
	t.Helper()
	var h [32]byte
	for seq := uint64(1); seq <= last; seq++ {
		h = crypto.LogChain(h, seq, all[seq-1])
	}
	return h
}

func readAll(t *testing.T, n *Node, op string) ([][]byte, [][HashLen]byte) {
	t.Helper()
	var envs [][]byte
	var chains [][HashLen]byte
	prev := [HashLen]byte{}
	for from := uint64(1); ; {
		b, err := n.Read(op, from, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Envelopes) == 0 {
			return envs, chains
		}
		for _, e := range b.Envelopes {
			prev = chainNext(prev, e)
			envs = append(envs, e)
			chains = append(chains, prev)
		}
		from += uint64(len(b.Envelopes))
	}
}

// Retention by count removes messages but keeps roster commits; the first
// held entry carries both chain anchors; reads below it answer
// ErrCompacted; a restart keeps all of it and the roster still holds.
func TestRetentionByCountKeepsCommits(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	ctx := context.Background()
	alice, bob, carol := newID(t, "alice"), newID(t, "bob"), newID(t, "carol")
	g, genesis, err := crypto.NewGroup(rand.Reader, alice, "ret", []crypto.Invite{{Token: bob.Token(), Role: crypto.RoleOfficer}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishCommit(n, "ret", genesis); err != nil {
		t.Fatal(err)
	}
	ids := make(map[uint64][MsgIDLen]byte)
	send := func(count int) {
		for range count {
			env, err := g.Seal([]byte("hello"), crypto.LogHead{})
			if err != nil {
				t.Fatal(err)
			}
			id := msgID(t)
			r, err := n.Publish(ctx, Publish{Op: "ret", MsgID: id, Envelope: env})
			if err != nil {
				t.Fatal(err)
			}
			ids[r.Seq] = id
		}
	}
	send(10) // 2..11
	add, err := g.Commit(rand.Reader, crypto.AddMember(carol.Token(), crypto.RoleOfficer))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := publishCommit(n, "ret", add); err != nil || r.Seq != 12 {
		t.Fatalf("commit: %+v %v", r, err)
	}
	if err := g.ProcessCommit(add); err != nil {
		t.Fatal(err)
	}
	send(10) // 13..22
	all, chains := readAll(t, n, "ret")
	if len(all) != 22 {
		t.Fatalf("%d entries", len(all))
	}

	if err := n.SetRetention(ctx, "ret", Retention{MaxCount: 5}, false); err != nil {
		t.Fatal(err)
	}
	if p, custom, err := n.RetentionOf("ret"); err != nil || !custom || p.MaxCount != 5 {
		t.Fatalf("policy %+v %v %v", p, custom, err)
	}
	if done, err := n.CompactNow(ctx); err != nil || done != 1 {
		t.Fatalf("compact: %d %v", done, err)
	}

	check := func(n *Node) {
		t.Helper()
		h := n.Head("ret")
		if h.First != 18 || h.Last != 22 {
			t.Fatalf("head %d..%d, want 18..22", h.First, h.Last)
		}
		if h.FirstPrev != chains[16] {
			t.Fatal("FirstPrev is not the chain of entry 17")
		}
		if h.FirstLog != logChainThrough(t, all, 17) {
			t.Fatal("FirstLog is not crypto.LogChain through entry 17")
		}
		if _, err := n.Read("ret", 17, 10, 1<<20); !errors.Is(err, ErrCompacted) {
			t.Fatalf("read below first: %v", err)
		}
		b, err := n.Read("ret", 18, 100, 1<<20)
		if err != nil || len(b.Envelopes) != 5 || b.Prev != chains[16] {
			t.Fatalf("read at first: %d entries, err %v", len(b.Envelopes), err)
		}
		ret, err := n.Retained("ret", 1, 100, 1<<20)
		if err != nil || len(ret) != 2 || ret[0].Seq != 1 || ret[1].Seq != 12 || string(ret[1].Entry) != string(add) {
			t.Fatalf("retained %+v %v", ret, err)
		}
		if ret, err := n.Retained("ret", 2, 100, 1<<20); err != nil || len(ret) != 1 || ret[0].Seq != 12 {
			t.Fatalf("retained from 2: %+v %v", ret, err)
		}
		if ret, err := n.Retained("ret", 1, 12, 1<<20); err != nil || len(ret) != 1 || ret[0].Seq != 1 {
			t.Fatalf("retained before 12: %+v %v", ret, err)
		}
	}
	check(n)

	// A kept entry's msgid still dedupes; a compacted one's is forgotten.
	if r, err := n.Publish(ctx, Publish{Op: "ret", MsgID: ids[20], Envelope: all[19]}); err != nil || !r.Dup || r.Seq != 20 {
		t.Fatalf("dup of a kept entry: %+v %v", r, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir)
	defer n.Close()
	check(n)
	// The roster survived the restart: the old commit no longer names the
	// head, and messages of the current epoch are accepted.
	if _, err := publishCommit(n, "ret", add); !errors.Is(err, ErrStaleHead) && !errors.Is(err, ErrRejected) {
		t.Fatalf("replayed commit: %v", err)
	}
	env, err := g.Seal([]byte("new epoch"), crypto.LogHead{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := n.Publish(ctx, Publish{Op: "ret", MsgID: msgID(t), Envelope: env}); err != nil || r.Seq != 23 {
		t.Fatalf("publish after restart: %+v %v", r, err)
	}
	// Nothing more is due, and clearing the policy keeps everything.
	if done, err := n.CompactNow(ctx); err != nil || done != 1 || n.Head("ret").First != 19 {
		t.Fatalf("second pass: %d %v first %d", done, err, n.Head("ret").First)
	}
	if err := n.SetRetention(ctx, "ret", Retention{}, true); err != nil {
		t.Fatal(err)
	}
	if done, err := n.CompactNow(ctx); err != nil || done != 0 {
		t.Fatalf("cleared policy compacted: %d %v", done, err)
	}
}

// Retention by age uses the leader's clock against the time stamped in each
// entry.
func TestRetentionByAge(t *testing.T) {
	n := openNode(t, t.TempDir(), func(c *Config) { c.Retention = Retention{MaxAge: time.Hour} })
	defer n.Close()
	ctx := context.Background()
	for range 5 {
		if _, err := n.Publish(ctx, Publish{Op: "age", MsgID: msgID(t), Envelope: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if p, custom, _ := n.RetentionOf("age"); custom || p.MaxAge != time.Hour {
		t.Fatalf("default policy %+v custom %v", p, custom)
	}
	if done, err := n.CompactNow(ctx); err != nil || done != 0 {
		t.Fatalf("fresh entries compacted: %d %v", done, err)
	}
	n.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if done, err := n.CompactNow(ctx); err != nil || done != 1 {
		t.Fatalf("old entries: %d %v", done, err)
	}
	if h := n.Head("age"); h.First != 6 || h.Last != 5 {
		t.Fatalf("head %+v", h)
	}
	// An empty held range still serves the head's chain to a reader at
	// First, and new entries follow on.
	b, err := n.Read("age", 6, 10, 1<<20)
	if err != nil || len(b.Envelopes) != 0 || b.Prev != n.Head("age").Chain {
		t.Fatalf("read at first of an empty range: %+v %v", b, err)
	}
	if r, err := n.Publish(ctx, Publish{Op: "age", MsgID: msgID(t), Envelope: []byte("y")}); err != nil || r.Seq != 6 {
		t.Fatalf("publish after compaction: %+v %v", r, err)
	}
	b, err = n.Read("age", 6, 10, 1<<20)
	if err != nil || len(b.Envelopes) != 1 || b.Prev != n.Head("age").FirstPrev {
		t.Fatalf("read: %+v %v", b, err)
	}
}

// Policies are replicated (set on a follower, forwarded); compaction is the
// leader's and lands identically everywhere.
func TestRetentionReplicates(t *testing.T) {
	nodes := openCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := nodes[0]
	for range 30 {
		if _, err := nodes[2].Publish(ctx, Publish{Op: "rep", MsgID: msgID(t), Envelope: []byte("z")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[1].SetRetention(ctx, "rep", Retention{MaxCount: 10}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].CompactNow(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("compact on a follower: %v", err)
	}
	if done, err := leader.CompactNow(ctx); err != nil || done != 1 {
		t.Fatalf("compact: %d %v", done, err)
	}
	want := leader.Head("rep")
	if want.First != 21 {
		t.Fatalf("leader first %d", want.First)
	}
	waitFor(t, func() bool {
		for _, n := range nodes {
			if n.Head("rep") != want {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if p, custom, err := n.RetentionOf("rep"); err != nil || !custom || p.MaxCount != 10 {
			t.Fatalf("%s policy %+v %v %v", n.cfg.NodeID, p, custom, err)
		}
	}
	if err := nodes[2].SetRetention(ctx, "", Retention{}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty op: %v", err)
	}
}
