package relay

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"liaison/relay/wire"
)

// Presence and delivery: each node knows, for the connections it serves,
// which operations they subscribed to, when they were last heard from, and
// the highest sequence of each operation written to them. That local table
// is ephemeral (never in the Raft log); nodes exchange it through Peers
// (cmd/relayd wires the cluster's gossip to it), and a presence request is
// answered with the local table merged with the peers' latest reports.

// Peers is what the relay needs to see other nodes' presence tables: the
// latest unexpired report (EncodeGossip's bytes) of each other node of the
// cluster. Reports come over the cluster's authenticated channel.
type Peers interface {
	PeerGossip() [][]byte
}

// maxGossipBytes bounds one node's decoded report.
const maxGossipBytes = 8 << 20

// departed is a subscription whose connection ended or that was ended,
// kept for PresenceRetention so members see a last-seen time.
type departed struct {
	op    string
	entry wire.PresenceEntry
	at    time.Time
}

// presenceTable holds the departed entries of this node.
type presenceTable struct {
	mu   sync.Mutex
	gone []departed // oldest first
}

// maxDeparted bounds the departed entries a node keeps.
const maxDeparted = 10_000

func (t *presenceTable) add(d departed, retention time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Replace an earlier entry of the same connection and operation.
	t.gone = slices.DeleteFunc(t.gone, func(o departed) bool { return o.op == d.op && o.entry.Conn == d.entry.Conn })
	t.gone = append(t.gone, d)
	t.expireLocked(d.at, retention)
}

func (t *presenceTable) expireLocked(now time.Time, retention time.Duration) {
	i := 0
	for i < len(t.gone) && (now.Sub(t.gone[i].at) > retention || len(t.gone)-i > maxDeparted) {
		i++
	}
	if i > 0 {
		// Drop the expired entries in place rather than copying the table
		// (up to maxDeparted entries) on every departure once it is full;
		// append reallocates when the array runs out.
		clear(t.gone[:i])
		t.gone = t.gone[i:]
	}
}

func (t *presenceTable) snapshot(now time.Time, retention time.Duration, op string) []departed {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now, retention)
	var out []departed
	for _, d := range t.gone {
		if op == "" || d.op == op {
			out = append(out, d)
		}
	}
	return out
}

// maxPresenceOps bounds the operations a connection is listed in.
const maxPresenceOps = 1024

// joinLocked lists c in op's presence from now on (on its first subscribe
// or publish to op); c.mu is held.
func (c *conn) joinLocked(op string) {
	if _, ok := c.joined[op]; ok || len(c.joined) >= maxPresenceOps {
		return
	}
	if c.joined == nil {
		c.joined = make(map[string]int64)
	}
	c.joined[op] = time.Now().UnixMilli()
}

// entryLocked describes c's presence in op; c.mu is held.
func (c *conn) entryLocked(op string) wire.PresenceEntry {
	e := wire.PresenceEntry{Node: c.s.cfg.NodeID, Conn: c.id, Connected: !c.closed, Since: c.joined[op], LastSeen: c.lastSeen.Load(), Delivered: c.delivered[op]}
	if id := c.identity.Load(); id != nil {
		e.Member = id.key[:] // ident never changes
	}
	if e.Node == "" {
		e.Node = "local"
	}
	return e
}

// departLocked records that c, listed in op, disconnected; c.mu is held.
func (c *conn) departLocked(op string) {
	e := c.entryLocked(op)
	e.Connected = false
	c.s.presence.add(departed{op: op, entry: e, at: time.Now()}, c.s.cfg.PresenceRetention)
}

// recordDeliveredLocked notes the highest sequence of each operation
// written to the connection; c.mu is held.
func (c *conn) recordDeliveredLocked(batch []outFrame) {
	for _, f := range batch {
		if f.last == 0 {
			continue
		}
		if c.delivered == nil {
			c.delivered = make(map[string]uint64)
		}
		if f.last > c.delivered[f.op] {
			c.delivered[f.op] = f.last
		}
	}
}

// localPresence returns this node's entries for op ("" for every
// operation): open connections that subscribed or published to it, then
// departed ones.
func (s *Server) localPresence(op string) (ops []string, entries []wire.PresenceEntry) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		if !c.closed {
			for name := range c.joined {
				if op == "" || name == op {
					ops = append(ops, name)
					entries = append(entries, c.entryLocked(name))
				}
			}
		}
		c.mu.Unlock()
	}
	for _, d := range s.presence.snapshot(time.Now(), s.cfg.PresenceRetention, op) {
		ops = append(ops, d.op)
		entries = append(entries, d.entry)
	}
	return ops, entries
}

// Gossip encodes this node's presence table for the other nodes of the
// cluster (at most wire.MaxGossipEntries entries, connected ones first).
func (s *Server) Gossip() ([]byte, error) {
	ops, entries := s.localPresence("")
	g := &wire.PresenceGossip{Node: s.cfg.NodeID, Time: time.Now().UnixMilli()}
	if g.Node == "" {
		g.Node = "local"
	}
	index := make(map[string]uint32)
	for i, e := range entries {
		if len(g.Entries) == wire.MaxGossipEntries {
			break
		}
		k, ok := index[ops[i]]
		if !ok {
			k = uint32(len(g.Ops))
			index[ops[i]] = k
			g.Ops = append(g.Ops, ops[i])
		}
		g.Entries = append(g.Entries, e)
		g.OpIndex = append(g.OpIndex, k)
	}
	return wire.EncodeGossip(g)
}

// presenceOf merges op's entries from this node and its peers: connected
// entries first, then by last seen, newest first. It returns at most
// wire.MaxPresenceEntries and whether it left some out.
func (s *Server) presenceOf(op string) ([]wire.PresenceEntry, bool) {
	_, entries := s.localPresence(op)
	if s.cfg.Peers != nil {
		for _, b := range s.cfg.Peers.PeerGossip() {
			g, err := wire.DecodeGossip(b, maxGossipBytes)
			if err != nil {
				s.cfg.Logger.Warn("ignoring a peer's presence report", "err", err)
				continue
			}
			if g.Node == s.cfg.NodeID {
				continue
			}
			for i, e := range g.Entries {
				if g.Ops[g.OpIndex[i]] == op {
					entries = append(entries, e)
				}
			}
		}
	}
	slices.SortStableFunc(entries, func(a, b wire.PresenceEntry) int {
		if a.Connected != b.Connected {
			if a.Connected {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.LastSeen, a.LastSeen)
	})
	if len(entries) > wire.MaxPresenceEntries {
		return entries[:wire.MaxPresenceEntries], true
	}
	return entries, false
}

// presence answers a presence request. Access follows subscribe's rule:
// members of the operation (any connection with OpenOps on an operation
// without a roster).
func (c *conn) presence(f *wire.PresenceReq) {
	if rf := c.mayRead(f.Op); rf != nil {
		c.sendRefusal(f.Req, f.Op, rf)
		return
	}
	entries, truncated := c.s.presenceOf(f.Op)
	c.send(&wire.Presence{Req: f.Req, Op: f.Op, Entries: entries, Truncated: truncated, Time: time.Now().UnixMilli()})
}
