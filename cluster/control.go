package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Commands other than publishes (retention policies, compactions, admin
// and audit commands) are proposed on the leader; a follower forwards them
// over the cluster channel and answers once it has applied the entry
// itself, so a read of this node sees the change.
//
// A proposal is a complete control command (retention_command.go), or an
// admin command without its time (kind || body): the leader stamps it with
// its own clock (leaderCommand), since the FSM never reads one.

// propose commits req through Raft, via the leader, and returns the
// sequence of the entry's result (an admin command's audit sequence; 0 for
// control commands) once this node has applied it.
func (n *Node) propose(ctx context.Context, req []byte) (uint64, error) {
	if n.raft.State() == raft.Leader {
		seq, _, err := n.proposeLocal(ctx, req)
		return seq, err
	}
	leader, _ := n.raft.LeaderWithID()
	if leader == "" {
		return 0, ErrNotLeader
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout+5*time.Second)
		defer cancel()
	}
	st, seq, index, msg, err := n.forwardRequest(ctx, string(leader), req)
	switch {
	case errors.Is(err, ErrNotLeader):
		return 0, err // the leader was not reached
	case err != nil:
		return 0, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case st != fwdOK:
		return 0, fwdError(st, msg)
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return 0, err
	}
	return seq, nil
}

// proposeLocal applies req on this node, which must lead (it is also the
// leader's side of a forwarded proposal), and returns the sequence of its
// result and the Raft index it was applied at.
func (n *Node) proposeLocal(ctx context.Context, req []byte) (seq, index uint64, err error) {
	if n.raft.State() != raft.Leader {
		return 0, 0, ErrNotLeader
	}
	cmd, err := leaderCommand(req, time.Now())
	if err != nil {
		return 0, 0, err
	}
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err // nothing proposed
	}
	f := n.raft.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return 0, 0, applyError(err)
	}
	_, admin := auditKind(cmd[0])
	out, ok := f.Response().(*applyOut)
	switch {
	case !ok || out == nil:
		return 0, f.Index(), fmt.Errorf("%w: no response from fsm", ErrUnknownOutcome)
	case out.err != nil:
		return 0, f.Index(), out.err
	case admin && len(out.results) != 1:
		return 0, f.Index(), fmt.Errorf("%w: fsm answered %d results", ErrUnknownOutcome, len(out.results))
	case admin:
		seq = out.results[0].Seq
	}
	return seq, f.Index(), nil
}

// leaderCommand turns a proposal into the Raft entry the leader appends,
// checked before it reaches the log: admin commands get the leader's
// clock; control commands are complete already. Anything else is refused.
func leaderCommand(req []byte, now time.Time) ([]byte, error) {
	if len(req) == 0 {
		return nil, fmt.Errorf("%w: empty proposal", ErrInvalid)
	}
	cmd := req
	switch _, admin := auditKind(req[0]); {
	case admin:
		cmd = encodeAdminCommand(req[0], now.UnixMilli(), req[1:])
	case req[0] != commandRetention && req[0] != commandCompact:
		return nil, fmt.Errorf("%w: command kind %d cannot be proposed", ErrInvalid, req[0])
	}
	if _, err := decodeCommand(cmd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return cmd, nil
}

// waitApplied waits until this node's FSM has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	done := make(chan error, 1)
	n.fsm.afterApplied(index, func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())
	}
}
