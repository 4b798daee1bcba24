package clients

import (
	"errors"
	"fmt"

	"liaison/relay/wire"
)

// ErrUnknownOutcome is wrapped by the error Publish returns when its context
// ends (or the client closes) before an ack arrived: the entry may or may not
// have been committed. Re-send it with WithMsgID and the same id to learn its
// sequence without creating a second entry.
var ErrUnknownOutcome = errors.New("clients: publish outcome unknown")

// ErrClosed is returned by operations on a closed Client, and is the terminal
// error of subscriptions ended by Client.Close.
var ErrClosed = errors.New("clients: client closed")

// ErrChainMismatch is the terminal error of a Subscription when the relay
// showed a history that does not continue the one it showed before: the prev
// hash of a deliver frame (or a recomputed chain value) differs from the
// chain hash the client computed itself.
var ErrChainMismatch = errors.New("clients: hash chain mismatch: relay showed a different history")

// ErrCompacted is wrapped by the error of a subscription whose starting
// sequence was removed by retention. See CompactedError for the oldest
// sequence still held.
var ErrCompacted = errors.New("clients: requested entries were compacted")

// ErrAlreadySubscribed is returned by Subscribe when the client already has an
// open subscription to the operation.
var ErrAlreadySubscribed = errors.New("clients: already subscribed to this operation")

// ErrProtocol is wrapped by errors caused by a relay that broke the protocol
// (an undecodable or unexpected frame). The connection is dropped and
// re-established.
var ErrProtocol = errors.New("clients: protocol violation by relay")

// ErrInvalidOp is returned for an operation name that wire.ValidOp rejects.
var ErrInvalidOp = errors.New("clients: invalid operation name")

// CompactedError reports that a subscription asked for entries older than the
// oldest entry the relay holds. It matches ErrCompacted with errors.Is and the
// relay's *wire.Error with errors.As.
type CompactedError struct {
	// Op is the operation.
	Op string
	// From is the sequence the client asked for.
	From uint64
	// Oldest is the oldest sequence the relay still holds.
	Oldest uint64
	// Wire is the relay's error frame.
	Wire *wire.Error
}

// Error implements error.
func (e *CompactedError) Error() string {
	return fmt.Sprintf("clients: %s: entries from %d were compacted; oldest held is %d", e.Op, e.From, e.Oldest)
}

// Unwrap exposes ErrCompacted and the relay's *wire.Error.
func (e *CompactedError) Unwrap() []error { return []error{ErrCompacted, e.Wire} }

// ChainMismatchError gives the details of an ErrChainMismatch.
type ChainMismatchError struct {
	// Op is the operation.
	Op string
	// Seq is the sequence whose chain hash differs (the entry before the
	// deliver frame when its prev field is the one that differs).
	Seq uint64
	// Want is the chain hash the client computed earlier.
	Want [32]byte
	// Got is the chain hash implied by the relay's frame.
	Got [32]byte
}

// Error implements error.
func (e *ChainMismatchError) Error() string {
	return fmt.Sprintf("clients: %s: hash chain mismatch at seq %d (have %x, relay implies %x): relay showed a different history",
		e.Op, e.Seq, e.Want[:8], e.Got[:8])
}

// Unwrap returns ErrChainMismatch.
func (e *ChainMismatchError) Unwrap() error { return ErrChainMismatch }
