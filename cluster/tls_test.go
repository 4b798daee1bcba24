package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liaison/cluster/pki"
)

// testCA is a cluster CA made with cluster/pki.
type testCA struct{ cert, key []byte }

func newTestCA(t testing.TB, name string) testCA {
	t.Helper()
	cert, key, err := pki.NewCA(rand.Reader, time.Now(), name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert, key}
}

func (c testCA) issue(t testing.TB, kind pki.Kind, name string) (cert, key []byte) {
	t.Helper()
	var hosts []string
	if kind == pki.KindNode {
		hosts = []string{"127.0.0.1"}
	}
	cert, key, err := pki.Issue(rand.Reader, time.Now(), c.cert, c.key, pki.Request{Name: name, Kind: kind, Hosts: hosts, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func (c testCA) nodeTLS(t testing.TB, id string) *tls.Config {
	t.Helper()
	cert, key := c.issue(t, pki.KindNode, id)
	cfg, err := pki.NodeTLS(cert, key, c.cert)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logRecorder is the output of a node's text logger; tests wait on what
// the node logs, where logging is the only outward sign of an event (a
// refused handshake).
type logRecorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{}, 1)} }

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.lines = append(r.lines, string(bytes.TrimSpace(p)))
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (r *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (r *logRecorder) find(subs ...string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		return l, true
	}
	return "", false
}

// wait returns the first line containing every one of subs, waiting up to
// 10 s for it to be logged.
func (r *logRecorder) wait(t *testing.T, what string, subs ...string) string {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		if l, ok := r.find(subs...); ok {
			return l
		}
		select {
		case <-r.changed:
		case <-timeout.C:
			r.mu.Lock()
			t.Logf("log:\n%s", strings.Join(r.lines, "\n"))
			r.mu.Unlock()
			t.Fatalf("%s: no log line with %q in 10 s", what, subs)
		}
	}
}

// openTLSCluster starts a three-node cluster on loopback in which every
// node secures node-to-node traffic with a certificate from ca. The third
// node joins through the second, a follower, so the membership request
// itself travels over a forwarding stream.
func openTLSCluster(t *testing.T, ca testCA) ([]*Node, []*logRecorder) {
	t.Helper()
	logs := []*logRecorder{newLogRecorder(), newLogRecorder(), newLogRecorder()}
	byID := map[string]*logRecorder{"n1": logs[0], "n2": logs[1], "n3": logs[2]}
	nodes := openClusterB(t, 3, func(c *Config) {
		c.TLS = ca.nodeTLS(t, c.NodeID)
		c.Logger = byID[c.NodeID].logger()
	})
	return nodes, logs
}

// raftDialer is a raft StreamLayer that dials the cluster mux with an
// arbitrary TLS config: an outsider trying to speak Raft to a node.
type raftDialer struct {
	net.Listener
	cfg *tls.Config
}

func (d raftDialer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(c, d.cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := tc.Write([]byte{streamRaft}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// outsiderTransport is a raft transport that dials with cfg.
func outsiderTransport(t *testing.T, cfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftDialer{Listener: ln, cfg: cfg}, MaxPool: 1, Timeout: 5 * time.Second, Logger: newHCLog(quietLogger()),
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// rogueVote asks target to vote in a far later term with a leadership
// transfer flag (so that even a node with a live leader would vote and
// step down): the most disruptive single Raft RPC.
func rogueVote(tr raft.Transport, from string, target *Node, term uint64) error {
	req := &raft.RequestVoteRequest{
		RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(from), Addr: []byte(tr.LocalAddr())},
		Term:               term,
		LastLogIndex:       1 << 40,
		LastLogTerm:        term,
		LeadershipTransfer: true,
	}
	var resp raft.RequestVoteResponse
	return tr.RequestVote(raft.ServerID(target.cfg.NodeID), raft.ServerAddress(target.cfg.RaftAdvertise), req, &resp)
}

func leaderOf(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	for _, n := range nodes {
		if n.Status().State == raft.Leader.String() {
			return n
		}
	}
	t.Fatal("no leader")
	return nil
}

// TestTLSClusterRejectsForeignNodes runs a three-node cluster with mutual
// TLS from one CA, then lets outsiders try to get in: a node with a
// certificate from another CA, a node without TLS, and raw Raft RPCs from
// holders of another CA's node certificate and of this CA's admin
// certificate. None of them gets a byte of the log or moves a term, and
// the cluster stays writable throughout.
func TestTLSClusterRejectsForeignNodes(t *testing.T) {
	ca, otherCA := newTestCA(t, "liaison-ca"), newTestCA(t, "impostor-ca")
	nodes, logs := openTLSCluster(t, ca)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Replication and forwarding over TLS.
	if _, err := nodes[0].Publish(ctx, Publish{Op: "tls", MsgID: msgID(t), Envelope: []byte("from n1")}); err != nil {
		t.Fatal(err)
	}
	leader := leaderOf(t, nodes)
	var follower *Node
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	r, err := follower.Publish(ctx, Publish{Op: "tls", MsgID: msgID(t), Envelope: []byte("forwarded")})
	if err != nil || r.Seq != 2 {
		t.Fatalf("publish through follower %s: %+v %v", follower.cfg.NodeID, r, err)
	}
	for _, n := range nodes {
		waitFor(t, func() bool { return n.Head("tls").Last == 2 })
	}
	for i, l := range logs {
		if line, ok := l.find("TLS handshake failed"); ok {
			t.Fatalf("n%d refused a cluster peer: %s", i+1, line)
		}
	}
	term := leader.Status().Term

	// Outsiders try to speak Raft to the leader directly.
	impostorCert, impostorKey := otherCA.issue(t, pki.KindNode, "n1")
	adminCert, adminKey := ca.issue(t, pki.KindAdmin, "alice")
	rogueTerm := term + 1000
	for name, cfg := range map[string]*tls.Config{
		"node certificate of another CA": clientConfig(t, impostorCert, impostorKey),
		"admin certificate of this CA":   clientConfig(t, adminCert, adminKey),
		"no client certificate":          {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
	} {
		if err := rogueVote(outsiderTransport(t, cfg), "n1", leader, rogueTerm); err == nil {
			t.Errorf("%s: RequestVote answered", name)
		}
	}

	// Two would-be nodes: one with a node certificate of another CA, one
	// without TLS. Each also tries Raft with its own transport.
	foreignLog, plainLog := newLogRecorder(), newLogRecorder()
	foreign, err := Open(Config{NodeID: "n4", DataDir: t.TempDir(), RaftBind: freeAddr(t), Logger: foreignLog.logger(),
		ElectionTimeout: 300 * time.Millisecond, TLS: otherCA.nodeTLS(t, "n4")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { foreign.Close() })
	plain, err := Open(Config{NodeID: "n5", DataDir: t.TempDir(), RaftBind: freeAddr(t), Logger: plainLog.logger(),
		ElectionTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	for _, o := range []*Node{foreign, plain} {
		if err := rogueVote(o.trans, o.cfg.NodeID, leader, rogueTerm); err == nil {
			t.Errorf("%s: RequestVote answered", o.cfg.NodeID)
		}
		c, err := o.mux.dial(leader.cfg.RaftAdvertise, streamForward, 2*time.Second)
		if o == foreign {
			// n4 refuses the leader's certificate itself.
			if err == nil {
				c.Close()
				t.Errorf("%s: forwarding stream to the leader opened", o.cfg.NodeID)
			}
			continue
		}
		// Without TLS the dial cannot tell; the leader drops what follows.
		if err != nil {
			t.Fatalf("%s: plain dial: %v", o.cfg.NodeID, err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := writeFrame(c, []byte{0, commandMembership, memberAdd, 2, 'n', '5', 0}); err != nil {
			t.Logf("%s: write to the leader: %v", o.cfg.NodeID, err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: the leader answered a plain forwarding stream", o.cfg.NodeID)
		}
		c.Close()
	}
	leaderLog := logs[indexOf(nodes, leader)]
	// The leader logged refusing the no-TLS node's plain bytes and the
	// holders of wrong certificates.
	leaderLog.wait(t, "leader refuses a plain connection", "TLS handshake failed", "first record does not look like a TLS handshake")
	leaderLog.wait(t, "leader refuses an admin certificate", "TLS handshake failed", "not a node certificate")
	leaderLog.wait(t, "leader refuses another CA", "TLS handshake failed", "unknown authority")

	// The leader is asked to add both. The configuration change commits
	// (three of five voters suffice), but the leader cannot reach either:
	// its handshake with n4 fails on n4's certificate, and n5 cannot parse
	// TLS.
	for _, o := range []*Node{foreign, plain} {
		if err := leader.AddVoter(ctx, o.cfg.NodeID, o.cfg.RaftAdvertise); err != nil {
			t.Fatalf("add %s: %v", o.cfg.NodeID, err)
		}
	}
	leaderLog.wait(t, "leader fails to replicate to n4", "failed to", foreign.cfg.RaftAdvertise, "unknown authority")
	foreignLog.wait(t, "n4 sees the leader's handshake fail", "TLS handshake failed", "bad certificate")
	leaderLog.wait(t, "leader fails to replicate to n5", "failed to", plain.cfg.RaftAdvertise)
	plainLog.wait(t, "n5 cannot read the leader's TLS", "unknown stream type")

	// The cluster stays writable, from the leader and through a follower,
	// and the new entries reach the three members only.
	if _, err := leader.Publish(ctx, Publish{Op: "after", MsgID: msgID(t), Envelope: []byte("a")}); err != nil {
		t.Fatalf("publish with outsiders in the configuration: %v", err)
	}
	if _, err := follower.Publish(ctx, Publish{Op: "after", MsgID: msgID(t), Envelope: []byte("b")}); err != nil {
		t.Fatalf("forwarded publish with outsiders in the configuration: %v", err)
	}
	for _, n := range nodes {
		waitFor(t, func() bool { return n.Head("after").Last == 2 })
	}
	for _, o := range []*Node{foreign, plain} {
		st := o.Status()
		if h, a := o.Head("tls"), o.Head("after"); h.Last != 0 || a.Last != 0 || st.LastIndex != 0 || st.CommitIndex != 0 || st.Leader != "" {
			t.Errorf("%s received cluster state: heads %+v %+v, status %+v", o.cfg.NodeID, h, a, st)
		}
	}
	for _, n := range nodes {
		if st := n.Status(); st.Term >= rogueTerm {
			t.Errorf("%s moved to the rogue term: %+v", n.cfg.NodeID, st)
		}
	}

	// The outsiders are removed again (through a follower); the cluster is
	// back to three and still takes writes.
	for _, o := range []*Node{foreign, plain} {
		if err := follower.RemoveServer(ctx, o.cfg.NodeID); err != nil {
			t.Fatalf("remove %s: %v", o.cfg.NodeID, err)
		}
	}
	if servers, err := leader.Servers(); err != nil || len(servers) != 3 {
		t.Fatalf("configuration after removal: %+v %v", servers, err)
	}
	if _, err := follower.Publish(ctx, Publish{Op: "after", MsgID: msgID(t), Envelope: []byte("c")}); err != nil {
		t.Fatalf("publish after removal: %v", err)
	}
	if foreign.Head("after").Last != 0 || plain.Head("after").Last != 0 {
		t.Error("an outsider received entries")
	}
}

func clientConfig(t *testing.T, certPEM, keyPEM []byte) *tls.Config {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The outsider skips checking the server, and presents its certificate
	// even though the server names other acceptable CAs: it only wants in.
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
		InsecureSkipVerify:   true, MinVersion: tls.VersionTLS13,
	}
}

func indexOf(nodes []*Node, n *Node) int {
	for i, m := range nodes {
		if m == n {
			return i
		}
	}
	return -1
}
