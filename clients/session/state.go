package session

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"liaison/relay/wire"
)

// Local state file format: magic ‖ version ‖ nonce (24) ‖
// XChaCha20-Poly1305(key, nonce, CBOR(opState), AD), where key =
// Identity.LocalStateKey(statePurpose) and AD = magic ‖ version ‖ 0x00 ‖
// str8(op) ‖ own Ed25519 public key, so a file cannot be moved to another
// operation's name or read by another identity.
const (
	stateMagic   = "LOPS"
	stateVersion = 1
	statePurpose = "liaison/v1/op-state"
	stateSuffix  = ".state"
	// maxStateFile bounds a state file read from disk.
	maxStateFile = 1 << 30
	// maxRecentChains bounds the per-sequence log chain hashes kept to check
	// the log heads named by envelopes.
	maxRecentChains = 4096
)

// EntryKind says what a history entry is.
type EntryKind uint8

// Entry kinds.
const (
	// EntryMessage: a message from another member, signature verified and
	// decrypted.
	EntryMessage EntryKind = 1
	// EntryOwn: a message this identity sent.
	EntryOwn EntryKind = 2
	// EntryCommit: a verified roster change (Summary says what).
	EntryCommit EntryKind = 3
	// EntryBeforeJoin: a message sent before this identity joined; its keys
	// were never ours.
	EntryBeforeJoin EntryKind = 4
	// EntryNotMember: a message sent while this identity was not a member
	// (after its removal).
	EntryNotMember EntryKind = 5
	// EntryRejected: an entry that failed verification, or a replay; it is
	// not shown as a message (Warnings say why).
	EntryRejected EntryKind = 6
	// EntryCompacted: entries the relay removed by retention before this
	// device read them (Summary gives the range; Seq is its last entry).
	EntryCompacted EntryKind = 7
)

// Entry is one processed log entry of an operation, as kept in the local
// history. The history is the record: message keys are deleted after use.
type Entry struct {
	Seq        uint64    `cbor:"1,keyasint"`
	Kind       EntryKind `cbor:"2,keyasint"`
	Sender     []byte    `cbor:"3,keyasint,omitempty"` // Ed25519 key (32 bytes)
	SenderName string    `cbor:"4,keyasint,omitempty"`
	// TimeMS is the sender's clock for messages (as the sender claims it),
	// the local processing time for commits and rejected entries.
	TimeMS   int64    `cbor:"5,keyasint,omitempty"`
	Type     string   `cbor:"6,keyasint,omitempty"` // payload type of messages
	Text     string   `cbor:"7,keyasint,omitempty"`
	Epoch    uint64   `cbor:"8,keyasint,omitempty"`
	Index    uint32   `cbor:"9,keyasint,omitempty"` // sender's ratchet index
	Summary  string   `cbor:"10,keyasint,omitempty"`
	Warnings []string `cbor:"11,keyasint,omitempty"`
	// Tasking, for Type TypeTask and TypeAck (see Payload): the task id,
	// a task's priority and due time (Unix ms, 0 none), an ack's state.
	// A task entry that breaks the tasking rules (not a task entry on
	// the wire, or not from a centre or admin member) keeps a warning and
	// no TaskID, so it is not tracked.
	TaskID   []byte     `cbor:"12,keyasint,omitempty"`
	Priority wire.Class `cbor:"13,keyasint,omitempty"`
	DueMS    int64      `cbor:"14,keyasint,omitempty"`
	State    AckState   `cbor:"15,keyasint,omitempty"`
	// MsgID is the message id an own message was published with (see
	// Queue); empty for others' entries.
	MsgID []byte `cbor:"20,keyasint,omitempty"`
}

// Verified reports whether the entry's sender is authenticated (its
// signature verified against the verified roster, or our own message).
func (e *Entry) Verified() bool {
	return e.Kind == EntryMessage || e.Kind == EntryOwn || e.Kind == EntryCommit
}

// pendingMsg is an own message sealed and saved before it was published.
// Its plaintext is kept because its key is gone.
type pendingMsg struct {
	MsgID  []byte `cbor:"1,keyasint"`
	Hash   []byte `cbor:"2,keyasint"` // SHA-256 of the envelope
	Env    []byte `cbor:"3,keyasint"`
	Class  uint8  `cbor:"4,keyasint,omitempty"`
	Type   string `cbor:"5,keyasint"`
	Text   string `cbor:"6,keyasint,omitempty"`
	TimeMS int64  `cbor:"7,keyasint"`
	Epoch  uint64 `cbor:"8,keyasint,omitempty"`
	Index  uint32 `cbor:"9,keyasint,omitempty"`
	// Kind is the wire.Kind it is published as; tasking fields as in
	// Payload (a task's priority is Class).
	Kind   uint8  `cbor:"10,keyasint,omitempty"`
	TaskID []byte `cbor:"11,keyasint,omitempty"`
	DueMS  int64  `cbor:"12,keyasint,omitempty"`
	State  uint8  `cbor:"13,keyasint,omitempty"`
}

// payload returns the plaintext payload of p.
func (p *pendingMsg) payload() Payload {
	pl := Payload{V: PayloadVersion, Type: p.Type, TimeMS: p.TimeMS, Text: p.Text, TaskID: p.TaskID, DueMS: p.DueMS, State: p.State}
	if p.Type == TypeTask {
		pl.Priority = p.Class
	}
	return pl
}

// entry returns the history entry of p once it is in the log.
func (p *pendingMsg) entry(self []byte, name string) Entry {
	e := Entry{Kind: EntryOwn, Sender: self, SenderName: name, TimeMS: p.TimeMS, Type: p.Type, Text: p.Text, Epoch: p.Epoch, Index: p.Index,
		TaskID: p.TaskID, DueMS: p.DueMS, State: AckState(p.State), MsgID: p.MsgID}
	if p.Type == TypeTask {
		e.Priority = wire.Class(p.Class)
	}
	return e
}

// opState is everything kept locally about one operation.
type opState struct {
	V    int    `cbor:"1,keyasint"`
	Op   string `cbor:"2,keyasint"`
	Self []byte `cbor:"3,keyasint"`
	// Group is crypto.Group.MarshalBinary, empty until joined.
	Group []byte `cbor:"4,keyasint,omitempty"`
	// Seq is the last processed sequence; RelayChain its relay chain hash
	// (docs/protocol.md) and LogChain its crypto.LogChain hash.
	Seq        uint64 `cbor:"5,keyasint"`
	RelayChain []byte `cbor:"6,keyasint,omitempty"`
	LogChain   []byte `cbor:"7,keyasint,omitempty"`
	// Chains holds the LogChain hashes of sequences ChainBase..Seq.
	ChainBase uint64   `cbor:"8,keyasint,omitempty"`
	Chains    [][]byte `cbor:"9,keyasint,omitempty"`
	// PreJoin collects the commits seen before this identity joined, from
	// the genesis on, for crypto.JoinGroup.
	PreJoin   [][]byte     `cbor:"10,keyasint,omitempty"`
	Joined    bool         `cbor:"11,keyasint,omitempty"`
	JoinEpoch uint64       `cbor:"12,keyasint,omitempty"`
	LastKU    int64        `cbor:"13,keyasint,omitempty"` // ms of our last processed key update (0: none since joining)
	Pending   []pendingMsg `cbor:"14,keyasint,omitempty"`
	Entries   []Entry      `cbor:"15,keyasint,omitempty"`
	Anomalies int          `cbor:"16,keyasint,omitempty"`
	// Gap is a retention gap announced by the relay whose kept roster
	// commits are still being processed; LastRetained is the last kept
	// commit processed (retained.go).
	Gap          *gapState `cbor:"17,keyasint,omitempty"`
	LastRetained uint64    `cbor:"18,keyasint,omitempty"`
}

func (st *opState) relayChain() [32]byte {
	var h [32]byte
	copy(h[:], st.RelayChain)
	return h
}

func (st *opState) logChain() [32]byte {
	var h [32]byte
	copy(h[:], st.LogChain)
	return h
}

// chainAt returns our LogChain hash of seq, if still kept.
func (st *opState) chainAt(seq uint64) ([32]byte, bool) {
	var h [32]byte
	if seq == 0 {
		return h, true
	}
	if seq < st.ChainBase || seq > st.Seq || st.ChainBase == 0 {
		return h, false
	}
	i := seq - st.ChainBase
	if i >= uint64(len(st.Chains)) {
		return h, false
	}
	copy(h[:], st.Chains[i])
	return h, true
}

// advance records entry seq as processed.
func (st *opState) advance(seq uint64, relay, log [32]byte) {
	st.Seq = seq
	st.RelayChain = relay[:]
	st.LogChain = log[:]
	if st.ChainBase == 0 || len(st.Chains) == 0 {
		st.ChainBase = seq
		st.Chains = nil
	}
	st.Chains = append(st.Chains, log[:])
	if over := len(st.Chains) - maxRecentChains; over > 0 {
		st.Chains = append([][]byte(nil), st.Chains[over:]...)
		st.ChainBase += uint64(over)
	}
}

var (
	stateEnc cbor.EncMode
	stateDec cbor.DecMode
)

func init() {
	var err error
	if stateEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	stateDec, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 1 << 26,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrNoState is returned for an operation with no local state.
var ErrNoState = errors.New("session: no local state for this operation")

func (s *Session) statePath(op string) string {
	return s.store.Name(op)
}

// readState decrypts op's state file; ErrNoState if there is none.
func (s *Session) readState(op string) (*opState, error) {
	b, err := s.store.Load(op)
	if err != nil {
		return nil, err
	}
	pt, err := s.openBlob(stateBlob, op, s.statePath(op), b)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	st := new(opState)
	if err := stateDec.Unmarshal(pt, st); err != nil {
		return nil, fmt.Errorf("session: %s: %w", s.statePath(op), err)
	}
	if st.V != 1 || st.Op != op || !bytes.Equal(st.Self, s.self[:]) {
		return nil, fmt.Errorf("session: %s: state of another operation or identity", s.statePath(op))
	}
	return st, nil
}

// writeState encrypts st and replaces op's state in the store atomically
// (for a FileStore: temporary file, fsync, rename, fsync of the directory).
func (s *Session) writeState(st *opState) error {
	pt, err := stateEnc.Marshal(st)
	if err != nil {
		return err
	}
	out, err := s.sealBlob(stateBlob, st.Op, pt)
	clear(pt)
	if err != nil {
		return err
	}
	return s.store.Save(st.Op, out)
}
