package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Gossip: nodes exchange small, ephemeral reports (the relay's presence
// table) over stream 3 of the cluster mux, so over mutual TLS when the
// cluster has it. Nothing of it goes through Raft. Every GossipInterval a
// node sends its latest report to every other server of the Raft
// configuration over one long-lived stream per peer; a receiver keeps each
// peer's latest report and forgets it GossipTTL after it arrived, so the
// entries of a node that stops reporting (stopped, partitioned, removed)
// expire.
//
// A frame is
//
//	uvarint len(node id), node id, uvarint len(report), report
//
// with the node id at most 128 bytes and the report at most MaxGossip.
const streamGossip byte = 3

// MaxGossip bounds one gossip report.
const MaxGossip = 8 << 20

// GossipSource returns this node's current report (nil or an error: send
// nothing this round).
type GossipSource func() ([]byte, error)

type gossipReport struct {
	b  []byte
	at time.Time
}

type gossip struct {
	mu      sync.Mutex
	src     GossipSource
	reports map[string]gossipReport
	senders map[string]*gossipSender
}

// SetGossipSource sets the function whose report this node sends to its
// peers every GossipInterval (cmd/relayd passes the relay's presence table).
func (n *Node) SetGossipSource(src GossipSource) {
	n.gsp.mu.Lock()
	n.gsp.src = src
	n.gsp.mu.Unlock()
}

// PeerGossip returns the latest report of each other node received within
// GossipTTL.
func (n *Node) PeerGossip() [][]byte {
	now := time.Now()
	n.gsp.mu.Lock()
	defer n.gsp.mu.Unlock()
	var out [][]byte
	for id, r := range n.gsp.reports {
		if now.Sub(r.at) > n.cfg.GossipTTL {
			delete(n.gsp.reports, id)
			continue
		}
		out = append(out, r.b)
	}
	return out
}

// gossipLoop sends this node's report to every peer each interval.
func (n *Node) gossipLoop() {
	defer n.bg.Done()
	t := time.NewTicker(n.cfg.GossipInterval)
	defer t.Stop()
	defer func() {
		n.gsp.mu.Lock()
		for id, s := range n.gsp.senders {
			s.stop()
			delete(n.gsp.senders, id)
		}
		n.gsp.mu.Unlock()
	}()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.gossipRound()
	}
}

func (n *Node) gossipRound() {
	n.gsp.mu.Lock()
	src := n.gsp.src
	n.gsp.mu.Unlock()
	if src == nil {
		return
	}
	b, err := src()
	if err != nil || len(b) == 0 || len(b) > MaxGossip {
		if err != nil {
			n.cfg.Logger.Warn("gossip report", "err", err)
		}
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	frame := gossipFrame(n.cfg.NodeID, b)
	peers := map[string]string{}
	for _, s := range f.Configuration().Servers {
		if s.ID != raft.ServerID(n.cfg.NodeID) {
			peers[string(s.ID)] = string(s.Address)
		}
	}
	n.gsp.mu.Lock()
	defer n.gsp.mu.Unlock()
	for id, s := range n.gsp.senders {
		if addr, ok := peers[id]; !ok || addr != s.addr {
			s.stop()
			delete(n.gsp.senders, id)
		}
	}
	for id, addr := range peers {
		s := n.gsp.senders[id]
		if s == nil {
			s = &gossipSender{n: n, addr: addr, next: make(chan []byte, 1), done: make(chan struct{})}
			n.gsp.senders[id] = s
			n.bg.Add(1)
			go s.run()
		}
		s.offer(frame)
	}
}

func gossipFrame(node string, b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(node)))
	out = append(out, node...)
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

// gossipSender keeps one stream to a peer and writes the latest frame.
type gossipSender struct {
	n        *Node
	addr     string
	next     chan []byte // capacity 1: the latest frame
	done     chan struct{}
	stopOnce sync.Once
}

func (s *gossipSender) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// offer replaces any unsent frame with b.
func (s *gossipSender) offer(b []byte) {
	select {
	case <-s.next:
	default:
	}
	select {
	case s.next <- b:
	default:
	}
}

func (s *gossipSender) run() {
	defer s.n.bg.Done()
	var c net.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	timeout := max(s.n.cfg.GossipInterval, time.Second)
	for {
		var b []byte
		select {
		case <-s.done:
			return
		case <-s.n.stop:
			return
		case b = <-s.next:
		}
		if c == nil {
			var err error
			if c, err = s.n.mux.dial(s.addr, streamGossip, timeout); err != nil {
				c = nil
				continue // try again with the next report
			}
		}
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := c.Write(b); err != nil {
			c.Close()
			c = nil
		}
	}
}

// serveGossipConn stores the reports a peer sends until the stream ends,
// breaks the format, or stays silent for GossipTTL.
func (n *Node) serveGossipConn(c net.Conn) {
	defer n.bg.Done()
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(n.cfg.GossipTTL))
		node, b, err := readGossipFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.cfg.Logger.Debug("gossip stream ended", "remote", c.RemoteAddr(), "err", err)
			}
			return
		}
		if node == n.cfg.NodeID {
			continue
		}
		n.gsp.mu.Lock()
		n.gsp.reports[node] = gossipReport{b: b, at: time.Now()}
		n.gsp.mu.Unlock()
	}
}

func readGossipFrame(r *bufio.Reader) (string, []byte, error) {
	nl, err := binary.ReadUvarint(r)
	if err != nil {
		return "", nil, err
	}
	if nl == 0 || nl > 128 {
		return "", nil, fmt.Errorf("gossip: node id of %d bytes", nl)
	}
	node := make([]byte, nl)
	if _, err := io.ReadFull(r, node); err != nil {
		return "", nil, err
	}
	bl, err := binary.ReadUvarint(r)
	if err != nil {
		return "", nil, err
	}
	if bl == 0 || bl > MaxGossip {
		return "", nil, fmt.Errorf("gossip: report of %d bytes", bl)
	}
	b := make([]byte, bl)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", nil, err
	}
	return string(node), b, nil
}
