package main

// profileNotes is the part of docs/performance.md that explains, from the
// profiles, where the time and memory go; it lives here so that
// regenerating the report keeps it.
func profileNotes() string {
	return `## Where the time and memory go (profiles)

Profiles come from ` + "`go run ./bench -pprof DIR`" + ` (CPU profiles of relayd node 1, the Raft leader,
per figure; heap profile and Go memory metrics before and after the idle connections) and are read with
` + "`go tool pprof -top DIR/throughput-*.pprof`" + `.

**Durable publish (throughput, latency).** relayd is not CPU-bound on this machine: during the
throughput figure of a profiled run (taken before the changes listed below) node 1 used about 16%
of one core (4.8 s of samples in 30 s). Its time is spent
waiting for the disk, and the chain of disk writes per acknowledged publish is longer than
JetStream's:

1. the leader appends the Raft entry to raft-boltdb (one bbolt commit: two fdatasync, data pages
   then meta page); hashicorp/raft v1.7.3 starts replicating an entry only after the leader's own
   StoreLogs returns (raft.go, dispatchLogs), so
2. a follower then appends it to its raft-boltdb (two more fdatasync) and answers; the entry is
   committed;
3. the leader's FSM applies it to the operation logs in fsm.db (a third bbolt commit, two more
   fdatasync) and only then answers the publisher, because the acknowledgement carries the
   sequence number (and the dedupe answer) that the FSM assigns;
4. a subscriber on a follower gets the entry after the follower learns the commit index (next
   AppendEntries) and its own FSM commit (two more fdatasync).

JetStream with ` + "`sync_interval: always`" + ` writes each message once per replica with one fsync. In that
CPU profile of the leader, bbolt's Tx.Commit was 27% of relayd's CPU (fdatasync alone 15%), Raft's
replication 17%, of which 7.7% went to reading back (GetLog, msgpack decoding) the entries the
leader had just written. What this branch changed on the hot path:

- ` + "`cluster`" + `: a raft.LogCache of the newest 64 entries, so replication sends what the leader just
  wrote without reading it back from bbolt;
- ` + "`relay`" + `: ` + "`BatchListener`" + ` (wired in relayd): the frames queued for a connection (acks,
  deliveries) leave in one write instead of one system call per frame;
- ` + "`clients`" + `: concurrent publishes on one client are coalesced into one write.

Together they let one publishing connection sustain about twice the rate it did before (the
latency figure at 5,000/s went from falling behind to keeping up) in a run with the same load on
the machine. The remaining limit is the number of serial fdatasync per publish (three bbolt commits,
six fdatasync, in series before the publisher's ack; JetStream fsyncs once on the leader and once
on a follower, and sends to the followers while it writes) and, on this shared 2-core machine,
CPU scheduling delay across the dozen goroutine hand-offs of that path. Closing the gap to 2x
JetStream needs a design change, not tuning: acknowledge once the Raft entry is committed
(sequence numbers assigned deterministically at commit rather than by the FSM's bbolt commit),
and let the FSM commit without its own fsync while the Raft log (fsynced) is the record it is
rebuilt from, syncing fsm.db before each snapshot. SHARP-EDGES.md forbids NoSync on a bbolt file
that is not rebuilt from elsewhere, so that change has to come with the rebuild.

**Catch-up.** A follower serves a catching-up subscriber from its own fsm.db in reads of up to
256 entries or 512 KiB per short bbolt read transaction, packed into 1 MiB deliver frames; the
client verifies the hash chain of every entry.

**Idle connections.** Per connection, measured with 15,000 connections
(` + "`go run ./bench -figures idle -idle 15000 -systems liaison,jetstream-always -pprof DIR`" + `): an idle
connection has no goroutine. On Linux, relayd's plain-TCP connections are watched by one epoll
instance and one goroutine (relay/poll.go): when a socket becomes readable, a short-lived goroutine
reads what arrived without waiting, parses the WebSocket frames itself (relay/wsframe.go; gorilla's
reader cannot say how much it has buffered), serves the requests and re-arms the socket. The auth
deadline, the idle timeout and the pings are checked by the poller's sweep rather than by a timer
per connection, and a small frame writer replaces gorilla's Conn after the upgrade. go_goroutines
stayed at 41 with the 15,000 connections open (before: 15,041, one 4 KiB stack each). What remains,
from the Go memory metrics and a heap profile taken with GODEBUG=memprofilerate=1: the runtime's
netpoll descriptor of each socket (512 B, off-heap: go_memstats_other_sys_bytes grew by 8.9 MB),
about 1.1 KiB of live heap per connection (the conn struct 448 B; the net package's netFD, addresses
and TCPConn about 330 B; the batching wrapper, frame writer, identity, ids and map entries about
300 B), and the garbage collector's headroom: with GOGC=100 the heap may grow to twice the live heap
before a collection, and the garbage of the 15,000 handshakes (net/http's buffers, the request,
gorilla's Conn, the identity token's ML-KEM key) fills that headroom (go_memstats_heap_sys_bytes grew
by about 2.7 KiB per connection). Connections that relayd serves over TLS itself keep one reader
goroutine each (crypto/tls reads whole records), as do all connections on other platforms.
`
}
