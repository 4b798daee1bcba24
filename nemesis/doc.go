// Package nemesis tests Liaison's central promise (no acknowledged message
// is lost, duplicated or reordered, whatever fails) the way Jepsen tests
// databases: real relayd processes, a workload of many clients, faults
// injected every few seconds, and a checker that reads the whole history.
//
// The parts:
//
//   - Proxy: a fault-injecting TCP proxy. Every node advertises its Raft
//     proxy's address (relayd --advertise) and dials other nodes from its
//     own loopback IP (relayd --raft-source), so one proxy per node sees
//     every node-to-node link into it and tells the sources apart: a link
//     can be blocked in one direction, in both (a partition), or delayed.
//     A second proxy in front of each node's client address lets the
//     nemesis cut client connections.
//   - Cluster and Node: relayd processes (built once with -race) on
//     127.x.y.1, .2, ... with their proxies, started, killed (SIGKILL),
//     paused (SIGSTOP/SIGCONT) and restarted on their data.
//   - the nemesis (faults.go): kills of the leader, of a random node or of
//     every node, pauses, partitions (one node, minority/majority, one
//     direction), delays, removing a node and adding it back, and cuts of
//     client connections; each recorded with its time, target and heal.
//   - the workload (run.go): publishers (package clients, so with its
//     fail-over and its re-sends under the same message id) publishing
//     unique values to several operations through random nodes, and
//     subscribers reading from random nodes; every publish with its ack or
//     error, and every delivery, is recorded.
//   - Check: lost, unexpected and duplicated entries, entries acked at one
//     sequence and stored at another, logs that differ between nodes,
//     chain hashes, gaps and mismatches in subscribers' streams, more than
//     one leader in a term, and linearizability of each operation's log
//     as an append-only log (porcupine).
//
// TestNemesisShort runs in the default test suite; TestNemesisLong runs
// when LIAISON_NEMESIS is set to a duration (docs/reliability.md).
package nemesis
