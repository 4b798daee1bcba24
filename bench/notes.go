package main

// profileNotes is the part of docs/performance.md that explains, from the
// profiles, where the time and memory go; it lives here so that
// regenerating the report keeps it.
func profileNotes() string {
	return `## Where the time and memory go (profiles)

Profiles come from ` + "`go run ./bench -pprof DIR`" + ` (CPU profiles of every relayd node and of the bench
process per figure; heap profile and Go memory metrics before and after the idle connections) and are
read with ` + "`go tool pprof -top DIR/FILE.pprof`" + `.

**Durable publish (throughput, latency).** relayd is not CPU-bound on this machine: during the
throughput figure node 1 (the Raft leader) uses about a fifth of one core
(` + "`go run ./bench -figures throughput -payloads 1024 -systems liaison -pprof DIR`" + `: 1.84 s of samples
in 10 s at 256 publishers, 44% of them in system calls; session 3, when ` + "`-pprof`" + ` took 10 s profiles of
node 1; it now takes 2 s profiles of every node, ` + "`DIR/throughput-n1-N.pprof`" + ` for node 1). A publish waits on disk
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
  acknowledged by a follower waited for. ` + "`go test -run x -bench ClusterLatency -benchtime 2000x ./cluster`" + `
  (in-process, 256 B, one publish at a time, quiet machine, 2026-11-28 22:01 UTC), p50 / p99:

  | | commit_timeout 1 ms | 5 ms |
  |---|---:|---:|
  | ack, publish on the leader | 1.29 / 2.75 ms | 1.52 / 3.36 ms |
  | ack, publish on a follower | 2.86 / 5.11 ms | 9.45 / 12.26 ms |
  | delivery on a follower | 2.81 / 5.32 ms | 9.35 / 12.30 ms |

  The price is an empty AppendEntries to each follower about every 1.5 ms while idle
  (docs/operations.md gives the CPU it costs).
- **Tried and left: one Raft entry in flight instead of eight** (cluster Config.MaxInflight).
  BenchmarkClusterPublish (` + "`go test -run '^$' -bench ClusterPublish -benchtime 6000x ./cluster`" + ` compares
  8 and 1) was about 20% faster at 16 publishers with 1, in every run, and the same at 256. A full
  run with 1 (2026-11-28 22:32 UTC; ` + "`go run ./bench -keep-going`" + ` with cluster/config.go's
  default set to 1) showed no throughput gain beyond the noise and a median
  latency of 7.4 ms at 1,000/s (256 B), against 4.6, 5.6 and 6.2 ms in three runs with 8; since
  a streaming connection's entries can wait for the one before them with 1, the default stays 8.
- **Reads**: a catch-up read copies its envelopes into one allocation (` + "`go test -run '^$' -bench 'BenchmarkRead$' ./cluster`" + `:
  455 to 177 allocations per 256-entry read), and ` + "`internal/netbatch`" + ` writes a frame of 64 KiB or
  more as it is instead of copying it through the batch buffer.

Session 3's final full run (2026-11-28 22:54 UTC, commit 5e221fe, quiet machine) had throughput
ratios of 0.43-0.94, up from 0.26-0.58 (session 2's run, loaded machine) and 0.44-0.83 (session 3's
first run on the quiet machine, before its changes: commit 726b568,
` + "`go run ./bench -figures throughput,latency -payloads 256 -systems liaison,jetstream-always -duration 3s`" + `),
and a p50 latency at 1,000/s on a follower of 6.2 ms (256 B), down from 11.0 ms. Full runs of the
same code differ with the load of the shared host: session 4's two full runs (2026-11-28 23:47 and
2026-11-29 00:00 UTC; the second is the one above) gave throughput ratios of 0.46-0.88 and
0.52-0.91, and catch-up rates of 320,228 and 528,616 messages/s (1.64x and 2.38x), while the
catch-up figure alone a minute after the first run
(` + "`go run ./bench -figures catchup -systems liaison -json '' -doc '' -plot ''`" + `) gave 616,282. The one
point where Liaison falls clearly behind is 4 KiB at 20,000/s offered from one connection (80 MB/s):
it delivers about 5,000-10,000/s, about what 256 publishers get acknowledged at 4 KiB, and the
backlog is what the latency measures. Every byte reaches the disk six times (three Raft logs, three
fsm.db). Its profile (` + "`go run ./bench -figures latency -rates 20000 -payloads 4096 -systems liaison -pprof DIR`" + `,
session 3)
showed the leader at about 55% of a core, 38% of it in system calls, and 8% in unmasking the
client's frames byte by byte, now done eight bytes at a time; the disk itself was not profiled.

What remains is the floor of this design, and the table "Where a durable publish's time goes"
above measures it in every run (relayd's ` + "`liaison_raft_log_append_seconds`" + ` and
` + "`liaison_commit_seconds`" + `, read by the harness around each throughput point). A commit waits for two
raft-boltdb appends in series, the leader's and then a follower's, each a bbolt commit with two
fdatasync: hashicorp/raft v1.7.3 sends an entry to the followers only after the leader's own
append returns (raft.go, dispatchLogs). With one publisher, twice JetStream's throughput means an
acknowledgement in half of JetStream's time, and the two appends alone take longer than that (the
sentence under the table gives both figures of the run). A 3 s execution trace of the leader and a
follower during one publisher (relayd ` + "`--pprof`" + `, ` + "`curl -o t.out 'http://NODE/debug/pprof/trace?seconds=3'`" + `,
` + "`go tool trace -pprof=syscall t.out > s.pb && go tool pprof -top s.pb`" + `; 2026-11-28 23:39 UTC) agrees:
0.79 s of fdatasync on the leader and 0.97 s on the follower, about 0.45 and 0.55 ms per commit of
the 1.58 ms mean commit; the rest is bbolt's page writes, two loopback hops and goroutine hand-offs.
Reaching 2x would need a log store with one fdatasync per append and replication in parallel with
the leader's own write: raft's log store and the order of its leader loop, both outside this project.
The latency goal meets the same chain. At 1,000/s half of JetStream's p99 is a few ms (2.87 ms in
the 2026-11-29 00:00 UTC run), while a delivery on a follower waits for the commit, then for the
follower to learn of it from the next AppendEntries (up to commit_timeout, 1 ms), then for that
follower's append of the newer entries the same AppendEntries carries, then for its apply: in that
run the means alone (a 1.61 ms commit, up to 1 ms, a 0.66 ms append) add up to about that before
any tail.

With more publishers the commit grows faster than the appends (at 16 publishers and 256 B, 5.24 ms
against 2.37 ms for the two appends in the 2026-11-29 00:00 UTC run): raft's leader loop is one goroutine that
both appends new entries and handles commit notices, so a commit waits behind the append in
progress, and a follower handles one AppendEntries at a time. The three nodes also share one
disk here, so their fdatasync queue behind each other's (in that run an append took 0.58-0.83 ms at
one publisher and 2.37-4.92 ms at 256); JetStream shares it too, with half as many fdatasync per write. The entries
grow with the load (group commit: BenchmarkClusterPublish reports about 19 messages per Raft entry
at 256 publishers, and raft writes several entries per disk write), so the gap narrows.

Two changes tried in session 4 and left out, each measured with
` + "`go run ./bench -figures throughput -payloads 256 -publishers 16,256 -systems liaison -relayd BIN`" + `
against a build of the same commit, runs alternated (msgs/s, two runs each):

- **A follower acknowledging a forwarded message publish as soon as the leader reports it
  committed**, instead of once it has applied the entry itself (cluster/forward.go): 2,341 and
  2,123 at 16 publishers against 2,005 and 1,991; 11,197 and 10,540 at 256 against 11,813 and
  9,547. Within the noise, and it would have weakened the read-your-writes guarantee of
  docs/protocol.md, so it was dropped.
- **32 Raft entries in flight instead of 8** (cluster Config.MaxInflight): 1,771 and 1,946 at 16
  publishers against 1,880 and 1,693; 7,979 and 7,494 at 256 against 8,587 and 8,927. No gain.

**Catch-up.** A follower serves a catching-up subscriber from its own fsm.db in reads of up to
256 entries or 512 KiB per short bbolt read transaction, packed into deliver frames of up to 1 MiB;
the client verifies the hash chain of every entry. Session 3 took the reflection out of the deliver
frame's CBOR encoding and decoding (relay/wire/deliver.go: the same bytes, a fast path for exactly
that layout, FuzzDeliver), encodes frames read from the log into pooled buffers, reads into pooled
buffers on the client (gorilla's ReadMessage grew a new buffer per message), reuses one SHA-256
state per frame, copies a read's envelopes into one allocation in cluster, and writes frames of 64
KiB or more straight to the socket. ` + "`go test -run x -bench Catchup -benchtime 1000000x ./relay`" + `
(real server on loopback, real client library) went from about 2.25 to 1.4 microseconds of CPU per
message. In the full run both the reading client and the serving relayd use about a core each
(` + "`-pprof DIR`" + ` writes FIG-nK-N.pprof for every node and FIG-client.pprof for the bench process): on
the client about 0.9 microseconds per message, of which SHA-256 (hardware-accelerated, required for
the chain) is about 0.45; on the relay, ` + "`cluster.(*store).read`" + ` is the largest part (bbolt cursor and
page checks, one copy). 5x JetStream needs about twice this rate from two processes that already
share the machine's two cores; what is left is mostly the chain hash and one copy on each side.

**Fan-out.** At 4 KiB the shared frames of a committed batch used to be packed up to 1 MiB, the
size of a whole connection queue, so they never fit and every subscriber fell back to reading the
log on its own (liaison_slow_consumer_total counted hundreds). Live frames are now packed to a
quarter of the queue, and a subscriber takes the frames that fit before reading the rest from the
log. What limits fan-out now is the bench process holding the 1,000 subscribers: at 4 KiB about 6.7
microseconds of CPU per delivery, a third of it verifying the hash chain (nats.go verifies nothing),
while each relayd uses 15-20% of a core (` + "`go run ./bench -figures fanout -systems liaison -pprof DIR`" + `:
` + "`fanout-client.pprof`" + ` and ` + "`fanout-nK-N.pprof`" + `).

**Idle connections.** Per connection, measured with 15,000 connections
(` + "`GODEBUG=memprofilerate=1 go run ./bench -figures idle -idle 15000 -systems liaison,jetstream-always -pprof DIR`" + `,
which saves node 1's heap profile and ` + "`/metrics`" + ` before and after as ` + "`DIR/idle-before.heap`" + `,
` + "`idle-after.heap`" + `, ` + "`idle-before.metrics`" + ` and ` + "`idle-after.metrics`" + `; relayd inherits GODEBUG): an idle
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
