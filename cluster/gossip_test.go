package cluster

import (
	"bufio"
	"bytes"
	"slices"
	"testing"
	"time"
)

// Every node receives every other node's report; a node that stops
// reporting is forgotten after GossipTTL.
func TestGossipReachesPeersAndExpires(t *testing.T) {
	fast := func(c *Config) {
		c.GossipInterval = 50 * time.Millisecond
		c.GossipTTL = 500 * time.Millisecond
	}
	nodes := openCluster(t, 3, fast)
	for _, n := range nodes {
		report := []byte("report of " + n.cfg.NodeID)
		n.SetGossipSource(func() ([]byte, error) { return report, nil })
	}
	want := func(n *Node, ids ...string) func() bool {
		return func() bool {
			var got []string
			for _, b := range n.PeerGossip() {
				got = append(got, string(bytes.TrimPrefix(b, []byte("report of "))))
			}
			slices.Sort(got)
			return slices.Equal(got, ids)
		}
	}
	waitFor(t, want(nodes[0], "n2", "n3"))
	waitFor(t, want(nodes[2], "n1", "n2"))
	// n3 stops reporting (it keeps running): the others forget it.
	nodes[2].SetGossipSource(func() ([]byte, error) { return nil, nil })
	waitFor(t, want(nodes[0], "n2"))
	// n2 stops altogether.
	nodes[1].Close()
	waitFor(t, want(nodes[0]))
}

func TestGossipFrameBounds(t *testing.T) {
	node, b, err := readGossipFrame(bufio.NewReader(bytes.NewReader(gossipFrame("n1", []byte("x")))))
	if err != nil || node != "n1" || string(b) != "x" {
		t.Fatalf("round trip %q %q %v", node, b, err)
	}
	for _, bad := range [][]byte{
		{0},                            // empty node id
		{200, 1},                       // node id too long
		append([]byte{2, 'n', '1'}, 0), // empty report
		append([]byte{2, 'n', '1'}, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}...), // report too large
		{2, 'n'}, // truncated
	} {
		if _, _, err := readGossipFrame(bufio.NewReader(bytes.NewReader(bad))); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}
