package cluster

// HashLen is the length of a chain hash.
const HashLen = 32

// Limits of the replicated state. They bound what the FSM decodes.
const (
	// MaxOpLen is the longest operation name the log accepts.
	MaxOpLen = 255
	// MaxEnvelope is the largest message envelope the log accepts.
	MaxEnvelope = 1 << 20
	// MsgIDLen is the length of a client message id.
	MsgIDLen = 16
	// MaxBatchCount bounds the publishes in one Raft entry.
	MaxBatchCount = 4096
)

// Entry kinds. A commit is checked against the operation's roster before it
// is stored; a message is stored as it is.
const (
	KindMessage uint8 = 0
	KindCommit  uint8 = 1
	// KindTask is an envelope holding tasking; stored and checked like a
	// message.
	KindTask uint8 = 2
)

// MaxCommit bounds a roster commit entry.
const MaxCommit = 4 << 20

// Publish is one entry to append to an operation's log.
type Publish struct {
	Op       string
	MsgID    [MsgIDLen]byte
	Class    uint8
	Kind     uint8
	Envelope []byte
}

// Result is the outcome of one committed publish.
type Result struct {
	// Seq is the envelope's sequence number in its operation's log.
	Seq uint64
	// Dup is true if the message id had been committed before; Seq is then
	// the original sequence and nothing new was stored.
	Dup bool
}

// Batch is a run of consecutive entries of one operation: Envelopes[i] has
// sequence Seq+i, Prev is the chain hash of entry Seq-1.
type Batch struct {
	Op        string
	Seq       uint64
	Prev      [HashLen]byte
	Envelopes [][]byte
	Classes   []uint8
	Kinds     []uint8
}

// Head describes the extent of an operation's log on this node.
type Head struct {
	// Last is the highest sequence applied (0 for an empty log).
	Last uint64
	// First is the oldest sequence still held (Last+1 when none are).
	First uint64
	// Chain is the chain hash of entry Last.
	Chain [HashLen]byte
	// FirstPrev is the chain hash of entry First-1 (zero when First is 1):
	// the anchor a reader starting at First continues from, once the
	// entries before it were removed by retention.
	FirstPrev [HashLen]byte
	// FirstLog is crypto.LogChain of entry First-1 (zero when First is 1):
	// the end-to-end log chain anchor at the same point (docs/protocol.md,
	// "Retention").
	FirstLog [HashLen]byte
}
