package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"liaison/crypto"
)

// Node is one member of a Liaison cluster: a raft instance, its stores and
// the FSM holding the operations' logs.
type Node struct {
	cfg     Config
	raft    *raft.Raft
	trans   *raft.NetworkTransport
	mux     *mux
	fwd     *forwarder
	logs    *raftboltdb.BoltStore
	st      *store
	fsm     *fsm
	metrics counters

	mu       sync.RWMutex // guards closed against Submit
	closed   bool
	queue    chan *pending
	inflight chan inflight
	stop     chan struct{}
	waitDone chan struct{}

	bg  sync.WaitGroup // forwarding and gossip goroutines
	gsp gossip

	hadState bool
	member   atomic.Bool // in the latest Raft configuration (watchMembership)

	// now is the clock retention passes use (tests move it).
	now func() time.Time

	closeOnce sync.Once
	closeErr  error
	fatalOnce sync.Once
	fatal     chan struct{}
}

// Open starts a node: it opens (or creates) the stores under cfg.DataDir,
// bootstraps a one-node cluster if asked and there is no state, and starts
// raft. The caller must Close it.
func Open(cfg Config) (*Node, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	raftDir := filepath.Join(c.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: data dir: %w", err)
	}
	n := &Node{
		cfg:      c,
		queue:    make(chan *pending, 4*c.MaxBatchCount),
		inflight: make(chan inflight, c.MaxInflight),
		stop:     make(chan struct{}),
		waitDone: make(chan struct{}),
		fatal:    make(chan struct{}),
		now:      time.Now,
	}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	dur, err := prepareFSMFile(filepath.Join(c.DataDir, "fsm.db"), c.FSMSync, c.bootID, c.Logger.With("component", "fsm"))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.st, err = openFSMStore(dur); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.fsm, err = newFSM(n.st, c.Logger.With("component", "fsm"), n.onFatal); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := checkBoltFile(filepath.Join(raftDir, "raft.db")); err != nil {
		return nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	n.logs, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(raftDir, "raft.db"),
		// Like fsm.db: the freelist is rebuilt on open instead of written
		// with every commit (the log's free pages grow with compaction).
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	hl := newHCLog(c.Logger.With("component", "raft"))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hl)
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshots: %w", err)
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	adv, err := net.ResolveTCPAddr("tcp", c.RaftAdvertise)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft advertise address %q: %w", c.RaftAdvertise, err)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() || adv.Port == 0 {
		return nil, fmt.Errorf("cluster: raft advertise address %q is not reachable by other nodes; set it", c.RaftAdvertise)
	}
	ln, err := net.Listen("tcp", c.RaftBind)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", c.RaftBind, err)
	}
	n.mux = newMux(ln, adv, c.TLS, c.Logger.With("component", "mux"))
	if c.DialSource != "" {
		n.mux.src = &net.TCPAddr{IP: net.ParseIP(c.DialSource)}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{subListener: n.mux.subs[streamRaft], m: n.mux},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.Logger = hl
	rc.CommitTimeout = c.CommitTimeout
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = logCacheEntries
	rc.NoSnapshotRestoreOnStart = true
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	if c.ElectionTimeout > 0 {
		rc.HeartbeatTimeout = c.ElectionTimeout
		rc.ElectionTimeout = c.ElectionTimeout
		rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, c.ElectionTimeout)
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}

	has, err := raft.HasExistingState(n.logs, n.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.hadState = has
	if !has && c.Bootstrap {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, n.logs, n.logs, snaps, n.trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
		c.Logger.Info("bootstrapped a one-node cluster", "raft", n.trans.LocalAddr())
	}
	// The cache keeps the newest entries in memory, so replication to the
	// followers does not read back (and decode) what the leader has just
	// written; 64 entries cover a full AppendEntries (MaxAppendEntries).
	var store raft.LogStore = n.logs
	if m := c.Metrics; m != nil {
		store = timedLogStore{LogStore: n.logs, observe: m.ObserveLogAppend}
	}
	logs, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log cache: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.logs, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	ok = true
	n.fwd = newForwarder(n)
	n.refreshMembership()
	n.gsp.reports = make(map[string]gossipReport)
	n.gsp.senders = make(map[string]*gossipSender)
	n.bg.Add(5)
	go n.serveStream(streamForward, n.serveForwardConn)
	go n.watchMembership()
	go n.retentionLoop()
	go n.serveStream(streamGossip, n.serveGossipConn)
	go n.gossipLoop()
	go n.batchLoop()
	go n.waitLoop()
	return n, nil
}

// catchUpFromSnapshot restores the newest snapshot into the FSM when the
// FSM's own file is older than it (for example after the file was lost).
// Raft itself is told not to restore on start, since the FSM's file is
// normally newer.
func (n *Node) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	if n.fsm.applied.Load() >= newest.Index {
		return nil
	}
	n.cfg.Logger.Warn("fsm is older than the newest snapshot; restoring it", "fsm_index", n.fsm.applied.Load(), "snapshot_index", newest.Index)
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("cluster: open snapshot %s: %w", newest.ID, err)
	}
	if err := n.fsm.Restore(rc); err != nil {
		return fmt.Errorf("cluster: restore snapshot %s: %w", newest.ID, err)
	}
	return nil
}

// membershipPoll is how often a node checks that it is still in the
// cluster's configuration.
const membershipPoll = 250 * time.Millisecond

// watchMembership keeps n.member current: a node removed from the cluster
// (or not yet added) refuses publishes and reports not ready, so clients
// move to a node that can serve them.
func (n *Node) watchMembership() {
	defer n.bg.Done()
	t := time.NewTicker(membershipPoll)
	defer t.Stop()
	var p catchUpProgress
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.refreshMembership()
			p.report(n, now)
		}
	}
}

// catchUpProgress logs, every few seconds, how far a node that is behind
// (a new node being served a snapshot or the log, a node back from an
// outage) has got, and when it has caught up.
type catchUpProgress struct {
	behind   bool
	lastLog  time.Time
	lastSeen uint64
}

const catchUpLogEvery = 5 * time.Second

func (p *catchUpProgress) report(n *Node, now time.Time) {
	commit, applied := n.raft.CommitIndex(), n.raft.AppliedIndex()
	switch {
	case commit > applied+1000 || (p.behind && applied < commit):
		if !p.behind {
			p.behind, p.lastLog, p.lastSeen = true, now, applied
			n.cfg.Logger.Info("catching up with the cluster", "applied_index", applied, "commit_index", commit)
			return
		}
		if now.Sub(p.lastLog) >= catchUpLogEvery {
			rate := float64(applied-p.lastSeen) / now.Sub(p.lastLog).Seconds()
			n.cfg.Logger.Info("catching up with the cluster", "applied_index", applied, "commit_index", commit, "entries_per_second", int(rate))
			p.lastLog, p.lastSeen = now, applied
		}
	case p.behind:
		p.behind = false
		n.cfg.Logger.Info("caught up with the cluster", "applied_index", applied)
	}
}

func (n *Node) refreshMembership() {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		// Raft shuts itself down on a node that learns it was removed
		// (ShutdownOnRemove): such a node is no longer a member.
		if errors.Is(err, raft.ErrRaftShutdown) {
			n.setMember(false)
		}
		return
	}
	in := false
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			in = true
			break
		}
	}
	n.setMember(in)
}

// setMember records whether this node is in the configuration. A node that
// leaves it will not apply the entries it forwarded publishes into: their
// publishers are told at once that the outcome is unknown, so they re-send
// (same msgid) through a node that is still a member.
func (n *Node) setMember(in bool) {
	if was := n.member.Swap(in); was && !in {
		n.cfg.Logger.Warn("this node is no longer a member of the cluster; it refuses publishes")
		n.fsm.failWaiters(fmt.Errorf("%w: this node left the cluster", ErrUnknownOutcome))
	}
}

// HadState reports whether the node found Raft state on disk when it
// opened (false for a brand-new node).
func (n *Node) HadState() bool { return n.hadState }

func (n *Node) onFatal(error) {
	n.fatalOnce.Do(func() { close(n.fatal) })
}

// Fatal is closed when the node hit an error it cannot continue from (its
// store failed to commit); the process should Close it and exit.
func (n *Node) Fatal() <-chan struct{} { return n.fatal }

// Submit queues p for the next Raft entry and calls done exactly once: with
// its Result after the entry is committed and applied on this node, or with
// an error. On a follower the entry is forwarded to the leader. done runs on
// one of the node's goroutines and must not block.
func (n *Node) Submit(p Publish, done func(Result, error)) {
	n.enqueue(p, false, func(r Result, _ uint64, err error) { done(r, err) })
}

func (n *Node) enqueue(p Publish, local bool, done func(Result, uint64, error)) {
	if err := validatePublish(&p); err != nil {
		done(Result{}, 0, err)
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		done(Result{}, 0, ErrClosed)
		return
	}
	if !n.member.Load() {
		// The flag is polled; a node that just joined checks now.
		n.refreshMembership()
		if !n.member.Load() {
			done(Result{}, 0, fmt.Errorf("%w: this node is not a member of the cluster", ErrNotLeader))
			return
		}
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" || (local && n.raft.State() != raft.Leader) {
		done(Result{}, 0, ErrNotLeader)
		return
	}
	select {
	case n.queue <- &pending{pub: p, local: local, done: done}:
	case <-n.stop:
		done(Result{}, 0, ErrClosed)
	}
}

// Publish submits p and waits for its result or for ctx. A cancelled ctx
// returns ErrUnknownOutcome: the publish may still commit.
func (n *Node) Publish(ctx context.Context, p Publish) (Result, error) {
	type res struct {
		r   Result
		err error
	}
	ch := make(chan res, 1)
	n.Submit(p, func(r Result, err error) { ch <- res{r, err} })
	select {
	case r := <-ch:
		return r.r, r.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, ctx.Err())
	}
}

func validatePublish(p *Publish) error {
	switch {
	case len(p.Op) == 0 || len(p.Op) > MaxOpLen:
		return fmt.Errorf("%w: operation name of %d bytes", ErrInvalid, len(p.Op))
	case maxEntry(p.Kind) == 0:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalid, p.Kind)
	case len(p.Envelope) == 0 || len(p.Envelope) > maxEntry(p.Kind):
		return fmt.Errorf("%w: entry of %d bytes", ErrInvalid, len(p.Envelope))
	}
	return nil
}

// Read returns up to maxCount consecutive entries of op from sequence from
// (at least one if any exist, and about maxBytes of envelopes), read from
// this node's FSM in one short transaction. A batch with no envelopes means
// from is past the end of the log. ErrCompacted means from is older than the
// oldest entry held.
func (n *Node) Read(op string, from uint64, maxCount, maxBytes int) (Batch, error) {
	return n.st.read(op, from, maxCount, maxBytes)
}

// Head returns the extent of op's log on this node.
func (n *Node) Head(op string) Head { return n.st.head(op) }

// Roster returns op's current verified roster as of the last entry applied
// on this node, or nil for an operation without one. Rosters are immutable
// values: the caller may keep it but must not modify it.
func (n *Node) Roster(op string) *crypto.Roster { return n.st.roster(op) }

// Watch registers fn to receive every applied batch, in log order, after
// it is readable with Read. fn runs on the FSM's goroutine and must not
// block. The returned func unregisters it.
func (n *Node) Watch(fn func([]Batch)) (cancel func()) { return n.fsm.watch(fn) }

// Status is a snapshot of the node's Raft state.
type Status struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Entries and Messages count the Raft entries this node built as
	// leader and the publishes packed into them.
	Entries  uint64 `json:"raft_entries_built"`
	Messages uint64 `json:"messages_batched"`
}

// Status reports the node's Raft state.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	// Read the term on both sides of the state: raft steps a leader down
	// (state first) before it adopts a newer term, so a state read between
	// two equal terms belongs to that term. Read once, a leader stepping
	// down between the reads was reported as leading the new term, beside
	// the node that really leads it.
	var state raft.RaftState
	var term uint64
	for range 10 {
		before := n.raft.CurrentTerm()
		state = n.raft.State()
		term = n.raft.CurrentTerm()
		if term == before {
			break
		}
	}
	st := Status{
		NodeID:       n.cfg.NodeID,
		State:        state.String(),
		Term:         term,
		Leader:       string(addr),
		LeaderID:     string(id),
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		Entries:      n.metrics.entries.Load(),
		Messages:     n.metrics.messages.Load(),
	}
	return st
}

// ErrNotReady is returned by Ready with the reason wrapped.
var ErrNotReady = errors.New("cluster: not ready")

// Ready reports whether the node can serve: it knows a leader and its FSM
// has applied everything it knows to be committed.
func (n *Node) Ready() error {
	select {
	case <-n.fatal:
		return fmt.Errorf("%w: store failed", ErrNotReady)
	default:
	}
	if !n.member.Load() {
		return fmt.Errorf("%w: not a member of the cluster", ErrNotReady)
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return fmt.Errorf("%w: no leader", ErrNotReady)
	}
	// Raft starts with a commit index of 0 and learns the real one from
	// the leader's first AppendEntries after it (a heartbeat does not
	// carry it): until then the node cannot tell how far behind it is,
	// for example while replaying its log after a restart.
	if n.raft.CommitIndex() == 0 {
		return fmt.Errorf("%w: commit index not yet known", ErrNotReady)
	}
	if c, a := n.raft.CommitIndex(), n.raft.AppliedIndex(); a < c {
		return fmt.Errorf("%w: applied %d of %d committed", ErrNotReady, a, c)
	}
	return nil
}

// WaitLeader waits until the cluster has a leader and this node has applied
// what it knows to be committed, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := n.Ready(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for a leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops the node: new publishes are refused, queued ones fail with
// ErrClosed, raft shuts down (in-flight publishes fail with
// ErrUnknownOutcome), and the stores are closed.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		close(n.stop)
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		<-n.waitDone
		n.fwd.close()
		n.fsm.closeWaiters()
		errs = append(errs, n.mux.close())
		n.bg.Wait()
		errs = append(errs, n.closeStores())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func (n *Node) closeStores() error {
	var errs []error
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.mux != nil {
		errs = append(errs, n.mux.close())
	}
	if n.logs != nil {
		errs = append(errs, n.logs.Close())
	}
	if n.st != nil {
		errs = append(errs, n.st.close())
	}
	return errors.Join(errs...)
}
