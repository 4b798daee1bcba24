package cluster

import "errors"

// Sentinel errors. Callers outside the package convert them where they enter.
var (
	// ErrNotLeader: this node cannot accept writes now and knows no leader
	// to forward to.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrUnknownOutcome: the write may or may not commit (leadership lost,
	// timeout, shutdown mid-flight). Retry with the same message id.
	ErrUnknownOutcome = errors.New("cluster: outcome unknown, retry with the same message id")
	// ErrCompacted: the requested sequence was removed by retention.
	ErrCompacted = errors.New("cluster: sequence compacted")
	// ErrClosed: the node is shutting down or closed.
	ErrClosed = errors.New("cluster: closed")
	// ErrInvalid: a request field is out of bounds; nothing was changed.
	ErrInvalid = errors.New("cluster: invalid request")
	// ErrBadCommand: a Raft entry could not be decoded.
	ErrBadCommand = errors.New("cluster: bad command")
	// ErrStaleHead: a roster commit does not name the operation's current
	// roster head; nothing was stored.
	ErrStaleHead = errors.New("cluster: commit does not name the current roster head")
	// ErrRejected: a roster commit failed verification (signature,
	// authority, operation); nothing was stored.
	ErrRejected = errors.New("cluster: commit rejected")
	// ErrUnauthorized: an admin request was refused (bad or missing
	// signature, signer not a cluster admin, outside the time window,
	// replayed, wrong node, action or arguments); nothing was changed.
	ErrUnauthorized = errors.New("cluster: admin request refused")
	// ErrAdminsExist: admins were to be bootstrapped from configuration,
	// but the cluster already has an admin list.
	ErrAdminsExist = errors.New("cluster: the cluster already has admins")
	// ErrCorrupt: the FSM's data file is inconsistent.
	ErrCorrupt = errors.New("cluster: corrupt state")
)
