// Package cluster owns Liaison's replicated state: a hashicorp/raft node with
// raft-boltdb as Raft log and stable store, and an FSM that keeps every
// operation's message log in its own bbolt file.
//
// What it promises:
//   - A publish is answered only after its Raft entry is committed by a
//     majority and applied by the local FSM; an error never means "not
//     stored" (see ErrUnknownOutcome), so callers retry with the same
//     message id and the FSM's dedupe index answers with the original
//     sequence.
//   - Each operation's log is numbered 1, 2, 3, ... with no gaps and carries
//     a hash chain: chain_n = SHA-256(chain_{n-1} || envelope_n), chain_0 all
//     zero. Envelopes are stored verbatim.
//   - Many publishes share one Raft entry (group commit), and raft's
//     BatchApplyCh lets many entries share one fsync.
//   - Retention (retention.go) removes an operation's oldest entries by
//     replicated policy, through compact commands the leader proposes with
//     an exact sequence, so every node removes the same ones. Roster
//     commits are kept; the first held entry's chain anchors are stored.
//   - Every applied batch is announced to watchers in log order, after the
//     bbolt transaction holding it has committed, so a reader that sees the
//     announcement can read the entries.
//
// Cluster admins and audit: the FSM also holds the cluster's admin list (a
// chain of crypto.AdminList versions) and an append-only, hash-chained audit
// trail (crypto.AuditEntry). Node.AuthorizeAdmin (or AuthorizeAdminHTTP) is
// the one gate for admin actions: it checks a signed crypto.AdminRequest
// against the replicated list, the time window and the replicated nonce
// index, and records it in the trail through Raft before the caller acts.
// Accepted roster commits and node joins are recorded by the FSM and the
// joining path. Raft command kinds 6-8 carry these (command.go).
//
// The FSM stores the last applied Raft index in the same bbolt transaction
// as the data, so on restart it skips entries it already holds and raft is
// told not to restore snapshots on start.
//
// Durability: the Raft log (raft.db) is fsynced on every write; the FSM's
// file is a copy of it and by default is not (fsmfile.go). A marker with
// the kernel's boot id tells a node whether its FSM file may have lost
// writes to a system crash; if so the file is removed and rebuilt from the
// newest snapshot and the log. Config.FSMSync turns per-write fsync back on.
package cluster
