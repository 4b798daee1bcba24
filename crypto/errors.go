package crypto

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these
// (test with errors.Is), usually with %w and some context.
var (
	// ErrMalformed reports bytes that do not parse: truncated, trailing data,
	// out-of-range lengths or enum values, non-canonical encodings.
	ErrMalformed = errors.New("liaison/crypto: malformed encoding")
	// ErrTooLarge reports an input or field beyond a documented bound.
	ErrTooLarge = errors.New("liaison/crypto: input exceeds bound")
	// ErrVersion reports an unknown format version or magic.
	ErrVersion = errors.New("liaison/crypto: unsupported version")
	// ErrBadName reports a display name that is empty, too long, not valid
	// UTF-8 or contains control characters.
	ErrBadName = errors.New("liaison/crypto: invalid display name")
	// ErrBadSignature reports a signature that does not verify.
	ErrBadSignature = errors.New("liaison/crypto: bad signature")
	// ErrBadKey reports a public or private key that cannot be used.
	ErrBadKey = errors.New("liaison/crypto: invalid key")
	// ErrDecrypt reports an AEAD or HPKE authentication failure, including a
	// wrong passphrase for an identity file.
	ErrDecrypt = errors.New("liaison/crypto: decryption failed")
	// ErrKDFParams reports argon2id parameters outside the accepted bounds.
	ErrKDFParams = errors.New("liaison/crypto: argon2id parameters out of bounds")
	// ErrRandom reports a failure to read from the supplied randomness source.
	ErrRandom = errors.New("liaison/crypto: randomness source failed")

	// ErrBadOpID reports an operation id that is empty, too long or not
	// printable ASCII.
	ErrBadOpID = errors.New("liaison/crypto: invalid operation id")
	// ErrWrongOperation reports a commit or envelope of another operation.
	ErrWrongOperation = errors.New("liaison/crypto: wrong operation")
	// ErrNotHead reports a commit that does not name the current roster head.
	ErrNotHead = errors.New("liaison/crypto: commit does not name the current head")
	// ErrBadEpoch reports a commit whose epoch is not the current epoch + 1.
	ErrBadEpoch = errors.New("liaison/crypto: wrong epoch number")
	// ErrNotGenesis reports a first commit that is not a valid genesis.
	ErrNotGenesis = errors.New("liaison/crypto: invalid genesis")
	// ErrUnknownSigner reports a commit signed by a key that is not a member
	// of the roster it applies to.
	ErrUnknownSigner = errors.New("liaison/crypto: signer is not a member")
	// ErrNotAdmin reports a roster change not signed by an admin.
	ErrNotAdmin = errors.New("liaison/crypto: signer is not an admin")
	// ErrForeignKeyUpdate reports a key update for a leaf other than the
	// signer's own.
	ErrForeignKeyUpdate = errors.New("liaison/crypto: key update for another member")
	// ErrBadOp reports an invalid change: adding a present member, removing
	// or re-roling an absent one, an unknown role, a member named twice, an
	// empty change list, or a change that would leave no admin.
	ErrBadOp = errors.New("liaison/crypto: invalid roster change")
	// ErrUnknownRole reports a role name that is not admin, centre or
	// officer (ParseRole).
	ErrUnknownRole = errors.New("liaison/crypto: unknown role")
	// ErrTooManyMembers reports a roster beyond MaxMembers.
	ErrTooManyMembers = errors.New("liaison/crypto: too many members")
	// ErrSealedSecrets reports a commit whose sealed epoch secrets do not
	// match the resulting roster (wrong count or size).
	ErrSealedSecrets = errors.New("liaison/crypto: sealed secrets do not match roster")
	// ErrNotClusterAdmin reports an admin request signed by a key that is
	// not in the cluster's admin list.
	ErrNotClusterAdmin = errors.New("liaison/crypto: signer is not a cluster admin")
	// ErrAuditChain reports an audit trail whose hash chain or numbering
	// is broken.
	ErrAuditChain = errors.New("liaison/crypto: audit chain broken")
	// ErrEmptyChain reports VerifyChain called with no commits.
	ErrEmptyChain = errors.New("liaison/crypto: empty commit chain")

	// ErrNotMember reports that the local identity is not (or no longer) a
	// member, so it receives no keys.
	ErrNotMember = errors.New("liaison/crypto: not a member")
	// ErrUnknownEpoch reports an envelope for an epoch whose keys this state
	// does not hold (never had, or already deleted).
	ErrUnknownEpoch = errors.New("liaison/crypto: unknown or deleted epoch")
	// ErrUnknownSender reports an envelope whose sender index is not a member
	// of its epoch.
	ErrUnknownSender = errors.New("liaison/crypto: unknown sender")
	// ErrReplay reports an envelope whose message key was already used (or
	// was evicted from the skipped-key window). The concrete error is a
	// *ReplayError with the authenticated header fields.
	ErrReplay = errors.New("liaison/crypto: replayed or expired message")
	// ErrTooFarAhead reports a ratchet index more than MaxSkip past the next
	// expected one.
	ErrTooFarAhead = errors.New("liaison/crypto: ratchet index too far ahead")
	// ErrOwnEnvelope reports an authentic envelope sent by the local member;
	// its keys were deleted when it was sealed.
	ErrOwnEnvelope = errors.New("liaison/crypto: own envelope")
	// ErrChainExhausted reports a sending chain at its maximum index; commit a
	// key update to start a new epoch.
	ErrChainExhausted = errors.New("liaison/crypto: sending chain exhausted")
	// ErrDestroyed reports use of a Group after Destroy.
	ErrDestroyed = errors.New("liaison/crypto: group state destroyed")
)

// ReplayError is returned by Group.Open for an authentic envelope whose key
// was already consumed: a replay (or a message older than the skipped-key
// window). It matches ErrReplay with errors.Is. The fields come from the
// signed header, so they can be shown to the user.
type ReplayError struct {
	Epoch  uint64
	Sender [32]byte // Ed25519 public key of the sender
	Index  uint32
}

// Error implements error.
func (e *ReplayError) Error() string {
	return ErrReplay.Error()
}

// Unwrap makes errors.Is(err, ErrReplay) true.
func (e *ReplayError) Unwrap() error { return ErrReplay }
