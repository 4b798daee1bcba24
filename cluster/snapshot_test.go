package cluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// A node that joins after the Raft log was truncated by a snapshot is served
// the FSM's file as a snapshot and ends with the same logs; it then keeps up
// with new writes.
func TestLateNodeServedFromSnapshot(t *testing.T) {
	nodes := openCluster(t, 2, func(c *Config) { c.TrailingLogs = 10 })
	ctx := context.Background()
	for i := 0; i < 300; i++ {
		if _, err := publishRetrying(ctx, nodes[i%2], Publish{Op: fmt.Sprintf("op-%d", i%3), MsgID: msgID(t), Envelope: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	leader := nodes[0]
	if leader.Status().State != "Leader" {
		leader = nodes[1]
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, err := leader.FirstLogIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Fatalf("raft log not truncated after the snapshot: first index %d", first)
	}

	late, err := Open(Config{NodeID: "late", DataDir: t.TempDir(), RaftBind: freeAddr(t), Logger: quietLogger(), ElectionTimeout: 300 * time.Millisecond, TrailingLogs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := leader.AddVoter(ctx, "late", late.cfg.RaftAdvertise); err != nil {
		t.Fatal(err)
	}
	for op := 0; op < 3; op++ {
		name := fmt.Sprintf("op-%d", op)
		waitFor(t, func() bool { return late.Head(name).Last == 100 })
		if late.Head(name) != leader.Head(name) {
			t.Fatalf("%s: late node head %+v, leader %+v", name, late.Head(name), leader.Head(name))
		}
		got, err := late.Read(name, 1, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := leader.Read(name, 1, 1000, 1<<20)
		for i := range want.Envelopes {
			if !bytes.Equal(got.Envelopes[i], want.Envelopes[i]) {
				t.Fatalf("%s entry %d differs", name, i+1)
			}
		}
	}
	// Once it is ready (in the configuration, caught up), new writes flow
	// through it, and the dedupe state came with the snapshot.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := late.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	r, err := late.Publish(ctx, Publish{Op: "op-0", MsgID: msgID(t), Envelope: []byte("after")})
	if err != nil || r.Seq != 101 {
		t.Fatalf("publish via the late node: %+v %v", r, err)
	}
}

// A backup taken while the node runs restores into a new one-node cluster
// with every operation, and the new cluster's Raft log (starting at 1 again)
// is applied, not skipped.
func TestBackupRestore(t *testing.T) {
	n := openNode(t, t.TempDir())
	ctx := context.Background()
	ids := make([][MsgIDLen]byte, 20)
	for i := range ids {
		ids[i] = msgID(t)
		if _, err := n.Publish(ctx, Publish{Op: "keep", MsgID: ids[i], Envelope: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	size, index, err := n.Backup(&buf)
	if err != nil || size == 0 || index == 0 {
		t.Fatalf("backup: %d bytes at index %d: %v", size, index, err)
	}
	want := n.Head("keep")
	n.Close()

	dir := t.TempDir()
	if err := PrepareRestore(dir, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := PrepareRestore(dir, bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("restore over an existing store succeeded")
	}
	if err := PrepareRestore(t.TempDir(), bytes.NewReader([]byte("not a bbolt file"))); err == nil {
		t.Fatal("garbage restored")
	}
	r := openNode(t, dir)
	defer r.Close()
	if h := r.Head("keep"); h != want {
		t.Fatalf("restored head %+v, want %+v", h, want)
	}
	res, err := r.Publish(ctx, Publish{Op: "keep", MsgID: ids[3], Envelope: []byte("again")})
	if err != nil || !res.Dup || res.Seq != 4 {
		t.Fatalf("dedupe after restore: %+v %v", res, err)
	}
	res, err = r.Publish(ctx, Publish{Op: "keep", MsgID: msgID(t), Envelope: []byte("new")})
	if err != nil || res.Seq != 21 {
		t.Fatalf("publish after restore: %+v %v", res, err)
	}
}
