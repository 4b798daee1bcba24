package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// logCacheEntries is how many of the newest Raft entries stay in memory
// (raft.LogCache) and how many one AppendEntries carries at most.
const logCacheEntries = 64

// Config configures a Node. Zero values take the defaults noted.
type Config struct {
	// NodeID names this node in the Raft configuration. Required.
	NodeID string
	// DataDir holds raft/ (log, stable store, snapshots) and fsm.db.
	// Required.
	DataDir string
	// RaftBind is the address the Raft transport listens on. Required.
	RaftBind string
	// RaftAdvertise is the address other nodes reach this one at; default
	// RaftBind.
	RaftAdvertise string
	// DialSource, when set, is the IP address this node's connections to
	// other nodes (Raft and forwarding) are made from; default: chosen by
	// the operating system. Multi-homed hosts set it; the nemesis tests set
	// it so that a fault-injecting proxy can tell the nodes apart.
	DialSource string
	// Bootstrap makes a node with no Raft state start a one-node cluster.
	Bootstrap bool
	// TLS, when set, secures every node-to-node connection (Raft and
	// forwarding) with mutual TLS: it must hold this node's certificate,
	// require and verify peers' certificates against the cluster CA, and be
	// usable both as a server and as a client config. Nil: plain TCP, for
	// the single-node default only.
	TLS *tls.Config
	// Logger receives the node's and raft's logs; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, observes every Raft entry this node commits as
	// leader and every append to its Raft log.
	Metrics Metrics

	// CommitTimeout is raft's CommitTimeout: how long the leader waits
	// before telling followers about a commit when no new entry carries
	// the news. Default 1 ms, raft's minimum: a follower learns of a commit
	// 1-2 ms after it (with 5 ms, 5-10 ms), which is what a subscriber or
	// a publisher on that follower waits for (BenchmarkClusterLatency).
	// The price is an empty AppendEntries per follower about every 1.5 ms
	// while idle.
	CommitTimeout time.Duration
	// FSMSync makes the FSM fsync its file on every commit. By default it
	// does not: the Raft log is already fsynced on a majority before an
	// entry commits, and a node rebuilds an FSM file the operating system
	// may have lost writes of (see fsmfile.go). Systems without a boot id
	// always fsync.
	FSMSync bool

	// bootID returns the current boot's id (tests replace it).
	bootID func() (string, error)
	// MaxBatchCount bounds the publishes packed into one Raft entry;
	// default 256.
	MaxBatchCount int
	// MaxBatchBytes bounds the encoded size of one Raft entry; default
	// 1 MiB.
	MaxBatchBytes int
	// MaxInflight bounds the Raft entries the batcher has submitted beyond
	// the one it waits on; default 8. Fewer in flight means more publishes
	// wait for the next entry, so entries grow with the load: with 1,
	// BenchmarkClusterPublish at 16 publishers was about 20% faster in
	// every run (256 publishers the same on average), but a full bench
	// run (go run ./bench) showed no throughput gain beyond the noise, and
	// a connection streaming at 1,000/s had a median publish-to-delivery
	// latency of 7.4 ms against 4.6-6.2 ms with 8 (each entry can wait
	// for the one before it). So 8 stays.
	MaxInflight int
	// ApplyTimeout bounds how long raft.Apply waits to enqueue an entry;
	// default 10 s.
	ApplyTimeout time.Duration
	// SnapshotThreshold and SnapshotInterval are raft's; defaults 16384
	// entries and 2 minutes.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// GossipInterval is how often the node sends its gossip report (the
	// relay's presence table) to the other nodes; default 1 s. GossipTTL
	// is how long a peer's report counts after it arrived; default
	// 5 × GossipInterval.
	GossipInterval time.Duration
	GossipTTL      time.Duration
	// Retention is the policy for operations without one of their own;
	// zero keeps everything. Set the same on every node: the leader's
	// applies.
	Retention Retention
	// RetentionInterval is how often the leader applies retention; default
	// 1 minute.
	RetentionInterval time.Duration
	// ElectionTimeout sets raft's heartbeat and election timeouts; default
	// raft's (1 s). Tests shorten it.
	ElectionTimeout time.Duration
	// TrailingLogs is how many Raft entries to keep after a snapshot;
	// default 10240.
	TrailingLogs uint64
}

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.NodeID == "" {
		return out, errors.New("cluster: config: NodeID is required")
	}
	if out.DataDir == "" {
		return out, errors.New("cluster: config: DataDir is required")
	}
	if out.RaftBind == "" {
		return out, errors.New("cluster: config: RaftBind is required")
	}
	if out.RaftAdvertise == "" {
		out.RaftAdvertise = out.RaftBind
	}
	if out.DialSource != "" {
		if ip := net.ParseIP(out.DialSource); ip == nil {
			return out, fmt.Errorf("cluster: config: DialSource %q is not an IP address", out.DialSource)
		}
	}
	if out.GossipInterval <= 0 {
		out.GossipInterval = time.Second
	}
	if out.GossipTTL <= 0 {
		out.GossipTTL = 5 * out.GossipInterval
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.bootID == nil {
		out.bootID = readBootID
	}
	if out.CommitTimeout == 0 {
		out.CommitTimeout = 1 * time.Millisecond
	}
	if out.MaxBatchCount == 0 {
		out.MaxBatchCount = 256
	}
	if out.MaxBatchCount < 1 || out.MaxBatchCount > MaxBatchCount {
		return out, fmt.Errorf("cluster: config: MaxBatchCount %d out of 1..%d", out.MaxBatchCount, MaxBatchCount)
	}
	if out.MaxBatchBytes == 0 {
		out.MaxBatchBytes = 1 << 20
	}
	if out.MaxInflight == 0 {
		out.MaxInflight = 8
	}
	if out.ApplyTimeout == 0 {
		out.ApplyTimeout = 10 * time.Second
	}
	if out.SnapshotThreshold == 0 {
		out.SnapshotThreshold = 16384
	}
	if out.RetentionInterval <= 0 {
		out.RetentionInterval = time.Minute
	}
	if out.Retention.MaxAge < 0 {
		return out, fmt.Errorf("cluster: retention max age %v is negative", out.Retention.MaxAge)
	}
	if out.SnapshotInterval == 0 {
		out.SnapshotInterval = 2 * time.Minute
	}
	if out.TrailingLogs == 0 {
		out.TrailingLogs = 10240
	}
	return out, nil
}

// Metrics receives observations the node makes; cmd/relayd adapts it to
// Prometheus. Calls must not block.
type Metrics interface {
	// ObserveCommit is called for each Raft entry this node built as
	// leader once it committed: how many publishes it carried and how long
	// it took from Apply to the FSM's answer.
	ObserveCommit(messages int, latency time.Duration)
	// ObserveLogAppend is called for each append to this node's Raft log
	// (as leader or follower): how many entries it wrote and how long the
	// write took, fsync included.
	ObserveLogAppend(entries int, latency time.Duration)
}
