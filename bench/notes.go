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
throughput figure node 1 (the Raft leader) uses about a fifth of one core (` + "`go tool pprof -top`" + `:
1.84 s of samples in 10 s at 256 publishers, 44% of them in system calls). A publish waits on disk
writes in series, and on goroutine hand-offs between them:

1. the leader appends the Raft entry to raft-boltdb: one bbolt commit, which is two fdatasync
   (data pages, then the meta page). hashicorp/raft v1.7.3 starts replicating an entry only after
   the leader's own StoreLogs returns (raft.go, dispatchLogs);
2. a follower appends it to its raft-boltdb (two more fdatasync) and answers; the entry is
   committed;
3. the leader's FSM applies it to fsm.db and answers the publisher with the sequence number and
   the dedupe answer it assigned;
4. a subscriber on a follower gets the entry once that follower learns the commit index (from
   the leader's next AppendEntries) and applies it.

What session 3 changed on this path (cluster/; ` + "`go test -bench 'ClusterPublish|ClusterLatency' ./cluster`" + `
measures it in-process):

- **fsm.db is no longer fsynced** (step 3 and step 4 lose their two fdatasync each). The Raft log
  is the durable record, fsynced on a majority before anything is acknowledged; fsm.db is a copy
  of it. A marker with the kernel's boot id (` + "`fsm.boot`" + `) makes a node rebuild fsm.db from its
  newest snapshot and Raft log after the operating system went down, when unsynced writes may be
  lost; a killed process loses nothing, as its writes are in the page cache (docs/operations.md,
  "What is on disk"; ` + "`TestFSMRebuiltAfterSystemCrash`" + `, and the power-loss case of
  ` + "`TestDamagedDataFileNeverServesWrongData`" + ` on real processes).
- **commit_timeout 1 ms** instead of 5 ms: with no newer entry to carry the news, a follower
  learned of a commit 5-10 ms late, which every delivery on a follower and every publish
  acknowledged by a follower waited for. In-process on a loaded machine
  (BenchmarkClusterLatency, 256 B): publish acknowledged through a follower p50 11.4 ms before,
  3.4 ms after; delivery on a follower p50 10.4 ms before, 3.5 ms after. The price is an empty
  AppendEntries to each follower about every 1.5 ms while idle (docs/operations.md gives the CPU
  it costs).

What remains is the floor of this design: two bbolt commits in series (four fdatasync, each 0.1
to 0.3 ms at the median here and several ms at p99 when other processes write) before any
acknowledgement, against JetStream's one write per replica with the leader sending while it
writes. For one publisher awaiting each acknowledgement that floor alone is about JetStream's
whole round trip, so 2x JetStream cannot be reached with hashicorp/raft's leader-write-then-
replicate order and raft-boltdb's two-fdatasync commit. That would need a log store with one
fdatasync per append and replication in parallel with the leader's own write (raft's log store
and the order of its leader loop, both outside this project). With many publishers the entries
grow with the load (group commit; 256 publishers put about 90 messages in a leader disk write
in BenchmarkClusterPublish), so the gap narrows; under CPU contention the dozen goroutine
hand-offs of the path (client, relay reader, batcher, raft leader loop, replication, follower,
FSM, waiter, relay writer) each add scheduling delay, which hurts Liaison more than JetStream.

**Catch-up.** A follower serves a catching-up subscriber from its own fsm.db in reads of up to
256 entries or 512 KiB per short bbolt read transaction, packed into 1 MiB deliver frames; the
client verifies the hash chain of every entry.

**Idle connections.** Per connection, measured with 15,000 connections: before this branch each
idle connection held its reader goroutine's stack at 8 KiB (the handshake's token parsing and
signature verification had grown it) and the parsed identity token (about 1 KiB, mostly its
ML-KEM public key). The relay now serves requests from a fresh goroutine once the handshake is
done (stack 4 KiB: go_memstats_stack_inuse_bytes went from 124 MB to 62 MB) and keeps only the
token's signing key and name. What remains: the parked reader goroutine (4 KiB stack), gorilla's
connection with its 512 B read buffer, our conn struct, the ping timer and the socket (about 3 KiB
live heap together), plus the garbage of 15,000 handshakes that the Go heap has not returned to
the OS when RSS is read. 4 KiB needs connections with no goroutine while idle (an epoll-driven
reader that starts a goroutine only when a socket is readable); gorilla/websocket does not expose
how much its read buffer holds, so that reader needs its own frame parsing or a buffer-aware fork.
`
}
