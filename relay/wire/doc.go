// Package wire defines the frames that Liaison relays and clients exchange, and
// nothing else: no connections, no I/O, no state.
//
// A frame is one binary WebSocket message (or any other message-oriented
// transport): a one-byte frame type followed by a CBOR map with small integer
// keys. Envelopes travel as CBOR byte strings, so the bytes a sender signed are
// carried, stored and delivered verbatim: decoding and re-encoding a frame never
// changes an envelope. docs/protocol.md is the normative description; this
// package is its reference implementation.
//
// Decode accepts untrusted input: every length is bounded, duplicate map keys,
// indefinite lengths and tags are rejected, and malformed input returns an error
// wrapping ErrMalformed instead of panicking.
package wire
