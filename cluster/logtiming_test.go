package cluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// appendMetrics records what a node observes.
type appendMetrics struct {
	mu      sync.Mutex
	commits int
	appends int
	entries int
	longest time.Duration
}

func (m *appendMetrics) ObserveCommit(int, time.Duration) {
	m.mu.Lock()
	m.commits++
	m.mu.Unlock()
}

func (m *appendMetrics) ObserveLogAppend(entries int, d time.Duration) {
	m.mu.Lock()
	m.appends++
	m.entries += entries
	m.longest = max(m.longest, d)
	m.mu.Unlock()
}

func (m *appendMetrics) snapshot() (commits, appends, entries int, longest time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commits, m.appends, m.entries, m.longest
}

// TestLogAppendsAreTimedOnEveryNode: the leader and both followers report
// each append to their Raft log, so the disk's share of a commit can be
// read from any node's metrics.
func TestLogAppendsAreTimedOnEveryNode(t *testing.T) {
	ms := map[string]*appendMetrics{}
	nodes := openCluster(t, 3, func(c *Config) {
		m := &appendMetrics{}
		ms[c.NodeID] = m
		c.Metrics = m
	})
	var leader *Node
	for _, n := range nodes {
		if n.Status().State == "Leader" {
			leader = n
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	before := map[string]int{}
	for id, m := range ms {
		_, _, before[id], _ = m.snapshot()
	}
	const count = 20
	for range count {
		if _, err := publishRetrying(context.Background(), leader, Publish{Op: "timed", MsgID: msgID(t), Envelope: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		waitFor(t, func() bool { return n.Head("timed").Last == count })
	}
	for _, n := range nodes {
		id := n.cfg.NodeID
		commits, appends, entries, longest := ms[id].snapshot()
		// Every publish was its own Raft entry (one at a time), and every
		// node wrote all of them to its log.
		if entries-before[id] < count || appends == 0 || longest <= 0 {
			t.Errorf("%s: %d appends of %d entries (%d new), longest %v", id, appends, entries, entries-before[id], longest)
		}
		if n == leader && commits < count {
			t.Errorf("leader %s observed %d commits, want %d", id, commits, count)
		}
	}
}
