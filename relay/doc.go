// Package relay is Liaison's WebSocket edge: it accepts client connections,
// runs the handshake, and serves publishes and subscriptions against a Log
// (the replicated store, wired in by cmd/relayd).
//
// What it owns and promises:
//   - Every connection authenticates first: the client signs this node's
//     fresh, single-use challenge (crypto.Login: challenge, node id, hello
//     time and, on TLS, the tls-exporter channel binding) with its identity
//     key; the challenge expires after Config.ChallengeTTL. The verified
//     identity is the connection's for its whole life (conn.Identity).
//   - Access follows each operation's signed roster (Log.Roster): only
//     members subscribe or publish; only centre and admin members publish
//     tasks; only admins publish roster changes (any member its own key
//     update); a publisher may only publish entries it signed. An operation
//     without a roster accepts only a genesis, unless Config.OpenOps.
//   - No goroutine per idle connection. On Linux a plain-TCP connection is
//     watched by the server's poller (one epoll instance, one goroutine),
//     which starts a short-lived reader when its socket is readable; that
//     reader parses the WebSocket frames itself (wsframe.go) and the
//     poller's sweep enforces the auth deadline, the idle timeout and the
//     pings (poll.go). TLS connections, and every connection elsewhere,
//     have one reader goroutine instead (gorilla's reader). Writes go
//     through a bounded per-connection outbound queue drained by a writer
//     goroutine that exists only while there is something to write, with a
//     deadline on every write. The HTTP handler returns right after the
//     upgrade.
//   - A publish is acknowledged only when the Log reports it committed; an
//     error whose outcome is unknown is reported as such (code timeout) so
//     the client retries with the same message id.
//   - A subscription delivers an operation's entries from the requested
//     sequence in order, each exactly once, across the switch from stored to
//     live entries. Live entries are pushed from the Log's commit
//     announcements; a subscriber that falls behind its outbound queue is
//     switched to reading from the Log (the log is the buffer), so memory
//     per connection stays bounded and nothing is skipped.
//   - Envelopes are forwarded byte for byte; the relay never decodes them.
//   - A malformed frame closes only its own connection, after an error frame.
package relay
