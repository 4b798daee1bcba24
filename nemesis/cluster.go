package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// Cluster is a set of relayd processes on 127.x.y.1, .2, ... with a
// fault-injecting proxy in front of every node's Raft address (the address
// it advertises, so every node-to-node link passes through one) and one in
// front of every node's client address.
type Cluster struct {
	Nodes []*Node
	dir   string
	log   *slog.Logger
	byIP  map[string]string
}

var subnet atomic.Uint32

// freePortOn returns a free address on ip, below the ephemeral port range
// so that an outgoing connection cannot take it before the node binds it.
func freePortOn(ip string) (string, error) {
	for range 200 {
		addr := net.JoinHostPort(ip, strconv.Itoa(10000+rand.IntN(22000)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr, nil
	}
	return "", errors.New("no free port")
}

// StartCluster builds relayd and starts size nodes under dir: the first
// bootstraps, the others join it. It returns once every node is a member
// and the cluster has a leader.
func StartCluster(ctx context.Context, dir string, size int, log *slog.Logger) (*Cluster, error) {
	bin, err := BuildRelayd()
	if err != nil {
		return nil, err
	}
	// A /24 of its own per cluster in this process, so that concurrent
	// clusters never share a source IP.
	sn := 200 + (os.Getpid()+int(subnet.Add(1)))%50
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, log: log, byIP: make(map[string]string)}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	source := func(a net.Addr) string {
		if t, ok := a.(*net.TCPAddr); ok {
			return c.byIP[t.IP.String()]
		}
		return ""
	}
	third := rand.IntN(250) + 1
	for i := range size {
		c.byIP[fmt.Sprintf("127.%d.%d.%d", sn, third, i+1)] = fmt.Sprintf("n%d", i+1)
	}
	for i := range size {
		ip := fmt.Sprintf("127.%d.%d.%d", sn, third, i+1)
		n := &Node{ID: fmt.Sprintf("n%d", i+1), IP: ip, DataDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), bin: bin}
		n.logFile = n.DataDir + ".log"
		var addrs [4]string
		for j := range addrs {
			if addrs[j], err = freePortOn(ip); err != nil {
				return nil, err
			}
		}
		n.Listen, n.Raft = addrs[0], addrs[1]
		if n.RaftProxy, err = NewProxy(addrs[2], n.Raft, n.ID, source, log); err != nil {
			return nil, err
		}
		if n.ClientProxy, err = NewProxy(addrs[3], n.Listen, n.ID, nil, log); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	for i, n := range c.Nodes {
		join := ""
		if i > 0 {
			join = c.Nodes[0].Listen
		}
		if err := n.Start(join); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err := waitFor(wctx, func() bool {
			select {
			case <-n.Exited():
				return true
			default:
			}
			return n.Ready(wctx)
		})
		cancel()
		if err != nil || !n.Running() {
			return nil, fmt.Errorf("%s did not become ready: %v\n%s", n.ID, err, n.Log())
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(wctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Node returns the node with id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ClientAddrs returns the client proxies' addresses.
func (c *Cluster) ClientAddrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.ClientProxy.Addr()
	}
	return out
}

// SetLink sets the direction from -> to between two nodes on both proxies
// that carry it (connections from dials to, and connections to dials from).
func (c *Cluster) SetLink(from, to string, l Link) {
	c.Node(to).RaftProxy.SetLink(from, to, l)
	c.Node(from).RaftProxy.SetLink(from, to, l)
}

// HealNetwork clears every link rule.
func (c *Cluster) HealNetwork() {
	for _, n := range c.Nodes {
		n.RaftProxy.Heal()
		n.ClientProxy.Heal()
	}
}

// Leader asks the running, unpaused nodes who leads and returns the leader
// a majority of those answering agree on.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	votes := make(map[string]int)
	for _, n := range c.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		st, err := n.Status(ctx)
		if err != nil || st.Node.LeaderID == "" {
			continue
		}
		votes[st.Node.LeaderID]++
	}
	best, count := "", 0
	for id, v := range votes {
		if v > count {
			best, count = id, v
		}
	}
	if best == "" || c.Node(best) == nil {
		return nil, errNoLeader
	}
	return c.Node(best), nil
}

// WaitHealthy waits until every node runs, is a voter in every node's
// configuration, all agree on one leader, and all have applied the same
// index (what the leader has committed).
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last string
	err := waitFor(ctx, func() bool {
		leader := ""
		var applied uint64
		for i, n := range c.Nodes {
			if !n.Running() {
				last = n.ID + " is not running"
				return false
			}
			st, err := n.Status(ctx)
			if err != nil {
				last = err.Error()
				return false
			}
			if len(st.Servers) != len(c.Nodes) {
				last = fmt.Sprintf("%s sees %d servers", n.ID, len(st.Servers))
				return false
			}
			if st.Node.LeaderID == "" || (leader != "" && st.Node.LeaderID != leader) {
				last = fmt.Sprintf("%s sees leader %q", n.ID, st.Node.LeaderID)
				return false
			}
			leader = st.Node.LeaderID
			if st.Node.AppliedIndex != st.Node.CommitIndex || (i > 0 && st.Node.AppliedIndex != applied) {
				last = fmt.Sprintf("%s applied %d commit %d", n.ID, st.Node.AppliedIndex, st.Node.CommitIndex)
				return false
			}
			applied = st.Node.AppliedIndex
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("cluster not healthy: %s: %w", last, err)
	}
	return nil
}

// Close kills every node and closes the proxies.
func (c *Cluster) Close() {
	defer httpClient.CloseIdleConnections()
	for _, n := range c.Nodes {
		n.Kill()
		if n.RaftProxy != nil {
			n.RaftProxy.Close()
		}
		if n.ClientProxy != nil {
			n.ClientProxy.Close()
		}
	}
}
