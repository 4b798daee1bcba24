package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/clients"
	"liaison/cluster"
)

// procNode is one relayd process of a test cluster and what it needs to be
// restarted.
type procNode struct {
	*proc
	id, dataDir, listen, raft string
}

// startCluster runs size relayd processes on 127.0.0.1, 127.0.0.2, ...: the
// first bootstraps, the others join it. They run with --open-ops: these
// tests publish raw entries.
func startCluster(t *testing.T, size int) []*procNode {
	t.Helper()
	return startClusterWith(t, size)
}

// startClusterWith is startCluster with extra flags for the first node.
func startClusterWith(t *testing.T, size int, first ...string) []*procNode {
	t.Helper()
	var nodes []*procNode
	for i := 0; i < size; i++ {
		host := fmt.Sprintf("127.0.0.%d", i+1)
		n := &procNode{id: fmt.Sprintf("n%d", i+1), dataDir: t.TempDir(), listen: freePortOn(t, host), raft: freePortOn(t, host)}
		extra := append([]string{"--open-ops"}, first...)
		if i > 0 {
			extra = append(extra, "--join", nodes[0].listen)
		}
		n.proc = startProcArgs(t, n.dataDir, n.listen, n.raft, n.id, extra...)
		nodes = append(nodes, n)
	}
	return nodes
}

// listens returns the nodes' client addresses, in order.
func listens(nodes []*procNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.listen
	}
	return out
}

func (n *procNode) restart(t *testing.T) {
	n.proc = startProcArgs(t, n.dataDir, n.listen, n.raft, n.id, "--open-ops")
}

func clusterStatus(addr string) (leaderID string, servers int, err error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/cluster/status")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Node struct {
			LeaderID string `json:"leader_id"`
		} `json:"node"`
		Servers []json.RawMessage `json:"servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", 0, err
	}
	return st.Node.LeaderID, len(st.Servers), nil
}

// awaitOneLeader waits until every node lists all the nodes as servers and
// names the same leader.
func awaitOneLeader(t *testing.T, nodes []*procNode) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() bool {
		var lead string
		for _, n := range nodes {
			l, count, err := clusterStatus(n.listen)
			if err != nil || count != len(nodes) || l == "" || (lead != "" && l != lead) {
				return false
			}
			lead = l
		}
		return true
	})
}

// Three relayd processes: publishes through every node reach subscribers on
// every node. The leader is killed with SIGKILL under load: a new leader is
// elected within 5 s, clients fail over, and nothing acknowledged is lost or
// duplicated. The killed node restarts and catches up.
func TestClusterKillLeaderUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	nodes := startCluster(t, 3)
	all := listens(nodes)
	// Wait until every node sees all three members and the same leader.
	awaitOneLeader(t, nodes)

	ctx := context.Background()
	const op = "joint-action"
	// One subscriber per node, each listing its own node first.
	subs := make([]*clients.Subscription, len(nodes))
	for i := range nodes {
		order := append([]string{all[i]}, all...)
		s, err := dialClient(t, order...).Subscribe(ctx, op, 1)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}

	const publishers, each = 6, 60
	var mu sync.Mutex
	acked := make(map[string]uint64) // value -> seq
	killAt := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		order := append([]string{all[p%len(all)]}, all...)
		c := dialClient(t, order...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				v := fmt.Sprintf("p%d-%d", p, i)
				pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				r, err := c.Publish(pctx, op, []byte(v))
				cancel()
				if err != nil {
					t.Errorf("publish %s: %v", v, err)
					return
				}
				mu.Lock()
				if prev, dup := acked[v]; dup {
					t.Errorf("%s acked twice (%d, %d)", v, prev, r.Seq)
				}
				acked[v] = r.Seq
				if len(acked) == publishers*each/3 {
					once.Do(func() { close(killAt) })
				}
				mu.Unlock()
			}
		}()
	}

	<-killAt
	leaderID, _, err := clusterStatus(nodes[0].listen)
	if err != nil {
		t.Fatal(err)
	}
	var victim *procNode
	var survivors []*procNode
	for _, n := range nodes {
		if n.id == leaderID {
			victim = n
		} else {
			survivors = append(survivors, n)
		}
	}
	if victim == nil {
		t.Fatalf("leader %q is not one of the nodes", leaderID)
	}
	killed := time.Now()
	victim.kill()
	var newLeader string
	waitUntil(t, 10*time.Second, func() bool {
		l, _, err := clusterStatus(survivors[0].listen)
		if err != nil || l == "" || l == leaderID {
			return false
		}
		newLeader = l
		return true
	})
	election := time.Since(killed)
	t.Logf("killed leader %s; %s leads after %v", leaderID, newLeader, election.Round(time.Millisecond))
	if election > 5*time.Second {
		t.Errorf("new leader after %v, want within 5 s", election)
	}

	wg.Wait()
	if t.Failed() {
		return
	}
	victim.restart(t)

	// The log holds every acked value exactly once, at its acked sequence,
	// and every subscriber (including the one whose node was killed) saw
	// the same gap-free sequence.
	total := len(acked)
	bySeq := make(map[uint64]string, total)
	for v, s := range acked {
		bySeq[s] = v
	}
	head := uint64(0)
	for s := range bySeq {
		head = max(head, s)
	}
	var chains [][32]byte
	for i, s := range subs {
		got := receive(t, s, 1, int(head))
		seen := make(map[string]bool)
		for _, m := range got {
			v := string(m.Envelope)
			if seen[v] {
				t.Fatalf("subscriber %d: %s delivered twice", i, v)
			}
			seen[v] = true
			if want, ok := bySeq[m.Seq]; ok && want != v {
				t.Fatalf("subscriber %d: seq %d is %s, %s was acked there", i, m.Seq, v, want)
			}
		}
		for v := range acked {
			if !seen[v] {
				t.Fatalf("subscriber %d: acked %s missing", i, v)
			}
		}
		chains = append(chains, got[len(got)-1].Chain)
	}
	for i := range chains {
		if chains[i] != chains[0] {
			t.Fatalf("subscriber %d ends on a different chain", i)
		}
	}
	// The restarted node caught up: a fresh subscription there sees the head.
	s, err := dialClient(t, victim.listen).Subscribe(ctx, op, head)
	if err != nil {
		t.Fatal(err)
	}
	last := receive(t, s, head, 1)
	if last[0].Chain != chains[0] {
		t.Fatal("restarted node ends on a different chain")
	}
	t.Logf("%d publishes acked, log head %d, all %d subscribers identical", total, head, len(subs))
}

// waitUntil polls cond: the processes are other programs.
func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Five relayd processes administered with the liaison CLI: status lists
// every node with its lag; a follower killed with SIGKILL during writes
// restarts and catches up; removing a node keeps the cluster writable; a
// snapshot is written to a file.
func TestFiveNodesAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	ops := newPerson(t, "ops")
	nodes := startClusterWith(t, 5, "--admin", ops.tokenFile)
	all := listens(nodes)
	relays := strings.Join(all, ",")
	admin := func(args ...string) (string, error) {
		return cliAs(t, ops, append([]string{"--relay", relays, "admin"}, args...)...)
	}
	waitUntil(t, 30*time.Second, func() bool {
		out, err := admin("status")
		return err == nil && strings.Count(out, "Leader ") == 1 && strings.Count(out, "Follower ") == 4
	})

	ctx := context.Background()
	c := dialClient(t, all...)
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			if _, err := c.Publish(ctx, "five", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(1, 50)
	leader, _, err := clusterStatus(all[0])
	if err != nil {
		t.Fatal(err)
	}
	var follower *procNode
	for _, n := range nodes {
		if n.id != leader && n != nodes[0] {
			follower = n
			break
		}
	}
	follower.kill()
	publish(51, 100)
	follower.restart(t)
	s, err := dialClient(t, follower.listen).Subscribe(ctx, "five", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, s, 1, 100); string(got[99].Envelope) != "m100" {
		t.Fatalf("restarted follower ends with %q", got[99].Envelope)
	}

	out, err := admin("status")
	if err != nil {
		t.Fatalf("admin status: %v\n%s", err, out)
	}
	for _, n := range nodes {
		if !strings.Contains(out, n.id+" ") {
			t.Fatalf("status does not list %s:\n%s", n.id, out)
		}
	}
	if !strings.Contains(out, "LAG") {
		t.Fatalf("status has no lag column:\n%s", out)
	}

	// Remove a follower that is not the one the client uses first.
	var victim *procNode
	for _, n := range nodes[1:] {
		if n.id != leader && n != follower {
			victim = n
			break
		}
	}
	if out, err := admin("remove", victim.id); err != nil {
		t.Fatalf("admin remove: %v\n%s", err, out)
	}
	if _, count, err := clusterStatus(all[0]); err != nil || count != 4 {
		t.Fatalf("after remove: %d servers, %v", count, err)
	}
	publish(101, 110)

	file := filepath.Join(t.TempDir(), "backup.db")
	if out, err := admin("snapshot", file); err != nil || !strings.Contains(out, "wrote "+file) {
		t.Fatalf("admin snapshot: %v\n%s", err, out)
	}
	if err := cluster.PrepareRestore(t.TempDir(), mustOpen(t, file)); err != nil {
		t.Fatalf("the snapshot does not restore: %v", err)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A node that has lost the leader turns /readyz false and tells subscribers
// it is behind rather than presenting its log end as current.
func TestNodeWithoutLeaderSaysItIsBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	nodes := startCluster(t, 3)
	waitUntil(t, 30*time.Second, func() bool {
		_, count, err := clusterStatus(nodes[2].listen)
		return err == nil && count == 3
	})
	c := dialClient(t, nodes[2].listen)
	if _, err := c.Publish(context.Background(), "isolated", []byte("before")); err != nil {
		t.Fatal(err)
	}
	nodes[0].kill()
	nodes[1].kill()
	waitUntil(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + nodes[2].listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	raw, err := dialAddr(t, nodes[2].listen)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.ws.Close()
	sub := raw.subscribe("isolated", 1)
	if !sub.Behind || sub.Head != 1 {
		t.Fatalf("subscribed %+v: want behind with the local head 1", sub)
	}
	// What it has is still delivered.
	if got := raw.collect("isolated", 1, 1); string(got[0]) != "before" {
		t.Fatalf("got %q", got[0])
	}
}
