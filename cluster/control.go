package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Control commands (retention policies) are proposed on the leader; a
// follower forwards them over the cluster channel and answers once it has
// applied the entry itself, so a read of this node sees the change.

// control applies body (an encoded control command) through Raft.
func (n *Node) control(ctx context.Context, body []byte) error {
	if n.raft.State() == raft.Leader {
		return n.applyLocal(ctx, body)
	}
	leader, _ := n.raft.LeaderWithID()
	if leader == "" {
		return ErrNotLeader
	}
	index, err := n.sendControl(ctx, string(leader), body)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, index)
}

// applyLocal proposes body on this node, which must lead.
func (n *Node) applyLocal(ctx context.Context, body []byte) error {
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	f := n.raft.Apply(body, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	}
	if out, ok := f.Response().(*applyOut); ok && out.err != nil {
		return out.err
	}
	return nil
}

// applyControlRequest is the leader's side of a forwarded control command;
// it returns the Raft index the command was applied at.
func (n *Node) applyControlRequest(ctx context.Context, body []byte) (uint64, error) {
	if _, err := decodeCommand(body); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	f := n.raft.Apply(body, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return 0, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	}
	return f.Index(), nil
}

// waitApplied waits until this node's FSM has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	done := make(chan error, 1)
	n.fsm.afterApplied(index, func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendControl forwards a control command to the leader at target and
// returns the index it was applied at.
func (n *Node) sendControl(ctx context.Context, target string, body []byte) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout+5*time.Second)
		defer cancel()
	}
	st, _, index, msg, err := n.forwardRequest(ctx, target, body)
	switch {
	case errors.Is(err, ErrNotLeader):
		return 0, err // the leader was not reached
	case err != nil:
		return 0, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case st != fwdOK:
		return 0, fwdError(st, msg)
	}
	return index, nil
}
