// Package clients is the Go client library of Liaison: it connects to one of a
// list of relay nodes over WebSocket, performs the handshake of
// docs/protocol.md, publishes envelopes and subscribes to operations' logs.
//
// What the package owns and promises:
//
//   - Connection management. A Client keeps one connection at a time. When it
//     drops, the client reconnects with jittered exponential backoff, rotating
//     through its relay list, re-authenticates, re-subscribes every
//     subscription from the next sequence it expects and re-sends every
//     unacknowledged publish with the same message id.
//   - Exactly-once publishing from the caller's point of view. Publish returns
//     only on an ack (the one sequence the message has) or a definite error;
//     retryable failures are retried with the same msgid, so the relay's
//     idempotence turns a re-send into a duplicate ack instead of a second
//     entry. If the caller's context ends first, the error wraps
//     ErrUnknownOutcome: the entry may or may not have committed, and the
//     caller may re-send it later with WithMsgID.
//   - Gap-free, duplicate-free, verified reading. A Subscription delivers an
//     operation's entries in sequence order, each exactly once, across
//     reconnects. It computes the log's hash chain and stops with
//     ErrChainMismatch if a relay shows a history that does not continue the
//     one it showed before. A deliver frame that would skip entries is never
//     passed through.
//   - Backpressure. Each subscription's channel is bounded; when the
//     application does not drain it, the connection's reader blocks and the
//     relay sees TCP backpressure.
//
// Entries are opaque bytes to this package, each with a kind (a message
// envelope or a roster commit: WithKind, Message.Kind). End-to-end
// encryption lives in package clients/session. PlaintextEnvelope and
// ParsePlaintextEnvelope remain only for tests of the relay; nothing
// user-facing sends them.
package clients
