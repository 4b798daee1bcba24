package relay

import (
	"errors"

	"liaison/crypto"
)

// HashLen is the length of a chain hash.
const HashLen = 32

// Log is what the relay needs from the replicated store. cmd/relayd adapts
// the cluster package to it.
type Log interface {
	// Submit appends p and calls done exactly once, after commit or with an
	// error (ErrUnavailable, ErrUnknownOutcome, ErrInvalid, ...). done
	// must not block.
	Submit(p Publish, done func(Result, error))
	// Read returns consecutive entries of op from sequence from: at least
	// one if any exist, at most maxCount, about maxBytes. An empty batch
	// means from is past the end. ErrCompacted if from is too old.
	Read(op string, from uint64, maxCount, maxBytes int) (Batch, error)
	// Head returns the extent of op's log.
	Head(op string) Head
	// Retained returns the roster commits of op kept below the oldest held
	// entry, with sequences in [from, before), in order, up to about
	// maxBytes (at least one if any).
	Retained(op string, from, before uint64, maxBytes int) ([]RetainedEntry, error)
	// RetainedCount counts what Retained would return over [from, before).
	RetainedCount(op string, from, before uint64) (int, error)
	// Watch registers fn for every committed batch, in log order, after it
	// is readable. fn must not block.
	Watch(fn func([]Batch)) (cancel func())
	// Ready returns nil when the node can serve clients.
	Ready() error
	// Roster returns op's current verified roster (as of the last entry
	// applied on this node), or nil for an operation without one. The
	// returned roster is never modified afterwards.
	Roster(op string) *crypto.Roster
}

// Publish is one entry to append: a message envelope or a roster commit
// (Kind as in wire.Kind).
type Publish struct {
	Op       string
	MsgID    [16]byte
	Class    uint8
	Kind     uint8
	Envelope []byte
}

// Result is a committed publish.
type Result struct {
	Seq uint64
	Dup bool
}

// Batch is consecutive entries of one operation; Envelopes[i] has sequence
// Seq+i and Prev is the chain hash of Seq-1.
type Batch struct {
	Op        string
	Seq       uint64
	Prev      [HashLen]byte
	Envelopes [][]byte
	Classes   []uint8
	Kinds     []uint8
}

// Head is the extent of an operation's log. FirstPrev and FirstLog are the
// relay chain hash and the crypto.LogChain hash of entry First-1 (zero when
// First is 1).
type Head struct {
	Last      uint64
	First     uint64
	Chain     [HashLen]byte
	FirstPrev [HashLen]byte
	FirstLog  [HashLen]byte
}

// RetainedEntry is a roster commit kept below an operation's first held
// entry.
type RetainedEntry struct {
	Seq   uint64
	Entry []byte
}

// Errors a Log returns; adapters convert their own errors to these.
var (
	// ErrUnavailable: the write was not accepted (no leader, closed); it
	// may be retried.
	ErrUnavailable = errors.New("relay: log unavailable")
	// ErrUnknownOutcome: the write may or may not commit.
	ErrUnknownOutcome = errors.New("relay: outcome unknown")
	// ErrCompacted: the sequence was removed by retention.
	ErrCompacted = errors.New("relay: compacted")
	// ErrInvalid: the request is out of bounds.
	ErrInvalid = errors.New("relay: invalid request")
	// ErrStaleHead: a roster commit does not name the current roster head.
	ErrStaleHead = errors.New("relay: commit does not name the current roster head")
	// ErrRejected: a roster commit failed verification.
	ErrRejected = errors.New("relay: commit rejected")
)
