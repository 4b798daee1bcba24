package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// openCluster starts n nodes in-process on loopback: the first bootstraps,
// the others join through the second node (a follower once it has joined),
// which exercises relaying membership changes to the leader.
func openCluster(t *testing.T, size int, opts ...func(*Config)) []*Node {
	t.Helper()
	return openClusterB(t, size, opts...)
}

// openClusterB is openCluster for tests and benchmarks.
func openClusterB(t testing.TB, size int, opts ...func(*Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, size)
	for i := range nodes {
		cfg := Config{NodeID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), RaftBind: freeAddr(t),
			Bootstrap: i == 0, Logger: quietLogger(), ElectionTimeout: time.Second}
		for _, o := range opts {
			o(&cfg)
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		t.Cleanup(func() { n.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes[1:] {
		via := nodes[0]
		if i > 0 {
			via = nodes[1]
		}
		// A leadership change on a loaded machine fails a membership
		// change; adding the same voter again is idempotent.
		err := via.AddVoter(ctx, n.cfg.NodeID, n.cfg.RaftAdvertise)
		for attempt := 0; err != nil && attempt < 10 && (errors.Is(err, ErrMembership) || errors.Is(err, ErrNotLeader)); attempt++ {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			err = via.AddVoter(ctx, n.cfg.NodeID, n.cfg.RaftAdvertise)
		}
		if err != nil {
			t.Fatalf("join %s via %s: %v", n.cfg.NodeID, via.cfg.NodeID, err)
		}
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func TestThreeNodesPublishAnywhereReadEverywhere(t *testing.T) {
	nodes := openCluster(t, 3)
	servers, err := nodes[0].Servers()
	if err != nil || len(servers) != 3 {
		t.Fatalf("configuration %+v %v", servers, err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[uint64]bool{}
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				r, err := publishRetrying(ctx, n, Publish{Op: "everywhere", MsgID: msgID(t), Envelope: fmt.Appendf(nil, "n%d-%d", i, j)})
				if err != nil {
					t.Error(err)
					return
				}
				// Acked on this node means readable on this node.
				if h := n.Head("everywhere"); h.Last < r.Seq {
					t.Errorf("%s acked seq %d but its log ends at %d", n.cfg.NodeID, r.Seq, h.Last)
				}
				mu.Lock()
				if seqs[r.Seq] {
					t.Errorf("seq %d acked twice", r.Seq)
				}
				seqs[r.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seqs) != 150 {
		t.Fatalf("%d distinct seqs", len(seqs))
	}
	// Every node converges on the same log and chain.
	for _, n := range nodes {
		waitFor(t, func() bool { return n.Head("everywhere").Last == 150 })
	}
	want := nodes[0].Head("everywhere")
	for _, n := range nodes {
		if h := n.Head("everywhere"); h != want {
			t.Fatalf("%s head %+v, leader %+v", n.cfg.NodeID, h, want)
		}
	}
	// A forwarded duplicate is answered with the original sequence.
	id := msgID(t)
	r1, err := nodes[1].Publish(ctx, Publish{Op: "dup", MsgID: id, Envelope: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := nodes[2].Publish(ctx, Publish{Op: "dup", MsgID: id, Envelope: []byte("x")})
	if err != nil || !r2.Dup || r2.Seq != r1.Seq {
		t.Fatalf("duplicate via another follower: %+v %v", r2, err)
	}

	// The leader leaves; the others elect a new one and keep accepting.
	var leader, rest = -1, []*Node{}
	for i, n := range nodes {
		if n.Status().State == "Leader" {
			leader = i
		} else {
			rest = append(rest, n)
		}
	}
	if leader < 0 {
		t.Fatal("no leader")
	}
	if err := nodes[leader].TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	nodes[leader].Close()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, n := range rest {
		if err := n.WaitLeader(wctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rest[0].Publish(ctx, Publish{Op: "everywhere", MsgID: msgID(t), Envelope: []byte("after")}); err != nil {
		t.Fatalf("publish after the leader left: %v", err)
	}
	if err := rest[1].RemoveServer(ctx, nodes[leader].cfg.NodeID); err != nil {
		t.Fatalf("remove the old leader: %v", err)
	}
	if servers, _ := rest[0].Servers(); len(servers) != 2 {
		t.Fatalf("configuration after remove: %+v", servers)
	}
}

// waitFor polls cond: replication to followers has no event we can await
// from outside the node.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publishRetrying publishes p, re-sending it with the same message id while
// the outcome is unknown or the node knows no leader (a leadership change
// on a loaded machine), as clients do.
func publishRetrying(ctx context.Context, n *Node, p Publish) (Result, error) {
	for attempt := 0; ; attempt++ {
		r, err := n.Publish(ctx, p)
		if err == nil || attempt == 20 || !(errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrNotLeader)) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, err
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
}
