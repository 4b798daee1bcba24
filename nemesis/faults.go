package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"liaison/crypto"
)

// Fault kinds.
const (
	FaultKillLeader      = "kill-leader"      // SIGKILL the leader, restart it after the hold
	FaultKillNode        = "kill-node"        // SIGKILL a random node, restart it after the hold
	FaultKillAll         = "kill-all"         // SIGKILL every node at once, restart them all
	FaultPauseLeader     = "pause-leader"     // SIGSTOP the leader, SIGCONT after the hold
	FaultPauseNode       = "pause-node"       // SIGSTOP a random node, SIGCONT after the hold
	FaultIsolateNode     = "partition-node"   // cut every link of one node (the leader half the time)
	FaultPartitionHalves = "partition-halves" // split the nodes into a minority and a majority
	FaultOneWay          = "partition-oneway" // block one direction between two nodes (often from the leader)
	FaultDelay           = "delay"            // 20-200 ms on every link of one node
	FaultMembership      = "remove-readd"     // remove a node from the configuration, add it back, restart it
	FaultClientCut       = "client-cut"       // close the client connections of one node (or all)
)

// faultWeights is how often each kind is drawn.
var faultWeights = []struct {
	kind   string
	weight int
}{
	{FaultKillLeader, 4}, {FaultKillNode, 3}, {FaultKillAll, 1},
	{FaultPauseLeader, 2}, {FaultPauseNode, 2},
	{FaultIsolateNode, 3}, {FaultPartitionHalves, 2}, {FaultOneWay, 2},
	{FaultDelay, 2}, {FaultMembership, 2}, {FaultClientCut, 3},
}

// ErrUnknownFault is Run's answer to a Config.Kinds entry that names no
// fault kind.
var ErrUnknownFault = errors.New("nemesis: unknown fault kind")

func knownFault(kind string) bool {
	for _, w := range faultWeights {
		if w.kind == kind {
			return true
		}
	}
	return false
}

// nemesis injects faults into a cluster and records them.
type nemesis struct {
	c     *Cluster
	rec   *recorder
	rng   *rand.Rand
	kinds map[string]bool // nil: all
}

func (m *nemesis) pick() string {
	total := 0
	for _, w := range faultWeights {
		if m.kinds == nil || m.kinds[w.kind] {
			total += w.weight
		}
	}
	x := m.rng.IntN(total)
	for _, w := range faultWeights {
		if m.kinds != nil && !m.kinds[w.kind] {
			continue
		}
		if x < w.weight {
			return w.kind
		}
		x -= w.weight
	}
	return FaultClientCut
}

func (m *nemesis) randomNode() *Node { return m.c.Nodes[m.rng.IntN(len(m.c.Nodes))] }

func (m *nemesis) leaderOrRandom(ctx context.Context) *Node {
	if l, err := m.c.Leader(ctx); err == nil {
		return l
	}
	return m.randomNode()
}

// inject applies one fault of kind, holds it for hold (unless ctx ends),
// and heals it.
func (m *nemesis) inject(ctx context.Context, kind string, hold time.Duration) {
	wait := func() {
		t := time.NewTimer(hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	switch kind {
	case FaultKillLeader, FaultKillNode:
		n := m.randomNode()
		if kind == FaultKillLeader {
			n = m.leaderOrRandom(ctx)
		}
		i := m.rec.fault(Fault{Kind: kind, Target: n.ID})
		n.Kill()
		wait()
		m.rec.healed(i, n.Start(""))
	case FaultKillAll:
		i := m.rec.fault(Fault{Kind: kind, Target: "all"})
		for _, n := range m.c.Nodes {
			n.Kill()
		}
		wait()
		var errs []error
		for _, n := range m.c.Nodes {
			errs = append(errs, n.Start(""))
		}
		m.rec.healed(i, errors.Join(errs...))
	case FaultPauseLeader, FaultPauseNode:
		n := m.randomNode()
		if kind == FaultPauseLeader {
			n = m.leaderOrRandom(ctx)
		}
		i := m.rec.fault(Fault{Kind: kind, Target: n.ID})
		err := n.Signal(syscall.SIGSTOP)
		wait()
		m.rec.healed(i, errors.Join(err, n.Signal(syscall.SIGCONT)))
	case FaultIsolateNode:
		n := m.randomNode()
		if m.rng.IntN(2) == 0 {
			n = m.leaderOrRandom(ctx)
		}
		i := m.rec.fault(Fault{Kind: kind, Target: n.ID})
		m.setLinksOf(n, Link{Blocked: true})
		wait()
		m.c.HealNetwork()
		m.rec.healed(i, nil)
	case FaultPartitionHalves:
		perm := m.rng.Perm(len(m.c.Nodes))
		minority := perm[:(len(perm)-1)/2]
		in := make(map[int]bool)
		var names []string
		for _, x := range minority {
			in[x] = true
			names = append(names, m.c.Nodes[x].ID)
		}
		i := m.rec.fault(Fault{Kind: kind, Target: fmt.Sprint(names)})
		for a := range m.c.Nodes {
			for b := range m.c.Nodes {
				if in[a] && !in[b] {
					m.setBoth(m.c.Nodes[a], m.c.Nodes[b], Link{Blocked: true})
				}
			}
		}
		wait()
		m.c.HealNetwork()
		m.rec.healed(i, nil)
	case FaultOneWay:
		a := m.randomNode()
		if m.rng.IntN(2) == 0 {
			a = m.leaderOrRandom(ctx)
		}
		b := m.randomNode()
		for b == a {
			b = m.randomNode()
		}
		i := m.rec.fault(Fault{Kind: kind, Target: a.ID + "->" + b.ID})
		m.c.SetLink(a.ID, b.ID, Link{Blocked: true})
		wait()
		m.c.HealNetwork()
		m.rec.healed(i, nil)
	case FaultDelay:
		n := m.randomNode()
		d := time.Duration(20+m.rng.IntN(180)) * time.Millisecond
		i := m.rec.fault(Fault{Kind: kind, Target: fmt.Sprintf("%s %v", n.ID, d)})
		m.setLinksOf(n, Link{Delay: d})
		wait()
		m.c.HealNetwork()
		m.rec.healed(i, nil)
	case FaultMembership:
		n := m.randomNode()
		i := m.rec.fault(Fault{Kind: kind, Target: n.ID})
		err := m.membership(ctx, n, crypto.AdminActionRemove, map[string]string{"id": n.ID})
		if err != nil {
			m.rec.healed(i, fmt.Errorf("remove: %w", err))
			return
		}
		wait()
		m.rec.healed(i, m.readd(ctx, n))
	case FaultClientCut:
		if m.rng.IntN(3) == 0 {
			i := m.rec.fault(Fault{Kind: kind, Target: "all"})
			for _, n := range m.c.Nodes {
				n.ClientProxy.CutAll()
			}
			m.rec.healed(i, nil)
			return
		}
		n := m.randomNode()
		i := m.rec.fault(Fault{Kind: kind, Target: n.ID})
		n.ClientProxy.CutAll()
		m.rec.healed(i, nil)
	}
}

// setBoth sets both directions between a and b to l.
func (m *nemesis) setBoth(a, b *Node, l Link) {
	m.c.SetLink(a.ID, b.ID, l)
	m.c.SetLink(b.ID, a.ID, l)
}

// setLinksOf sets every link of n, both ways, to l.
func (m *nemesis) setLinksOf(n *Node, l Link) {
	for _, o := range m.c.Nodes {
		if o != n {
			m.setBoth(n, o, l)
		}
	}
}

// readd adds a removed node back to the configuration and restarts it: its
// raft shut itself down when it was removed, so the process is restarted
// on its data to serve again as a member.
func (m *nemesis) readd(ctx context.Context, n *Node) error {
	err := m.membership(ctx, n, crypto.AdminActionJoin, map[string]string{"id": n.ID, "address": n.RaftProxy.Addr()})
	n.Kill()
	return errors.Join(err, n.Start(""))
}

// membership sends a configuration change through a running node other
// than target, retrying (leaders change under the other faults) for up to
// a minute.
func (m *nemesis) membership(ctx context.Context, target *Node, action string, args map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		for _, n := range m.c.Nodes {
			if n == target || !n.Running() || n.Paused() {
				continue
			}
			if last = n.admin(ctx, action, args); last == nil {
				return nil
			}
		}
		t := time.NewTimer(time.Duration(200*(attempt+1)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// repair makes sure every node runs unpaused and the network is whole:
// between faults, and before the final checks.
func (m *nemesis) repair() error {
	m.c.HealNetwork()
	var errs []error
	for _, n := range m.c.Nodes {
		if n.Paused() {
			errs = append(errs, n.Signal(syscall.SIGCONT))
		}
		if !n.Running() {
			errs = append(errs, n.Start(""))
		}
	}
	return errors.Join(errs...)
}
