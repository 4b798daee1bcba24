package relay

import (
	"fmt"
	"slices"

	"liaison/crypto"
	"liaison/relay/wire"
)

// Access control follows each operation's signed roster, as this node last
// applied it (Log.Roster). The FSM checks every entry again when it
// commits; these checks refuse what it would refuse, and what only the
// relay can judge (who is publishing), before anything reaches Raft.

// refusal is a request refused by access control.
type refusal struct {
	code   wire.Code
	reason string // counted in Stats.Refused
	msg    string
}

func refuse(code wire.Code, reason, format string, args ...any) *refusal {
	return &refusal{code: code, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Reasons counted in Stats.Refused.
const (
	refusedNoRoster   = "no_roster"   // operation has no roster and OpenOps is off
	refusedNotMember  = "not_member"  // identity is not in the operation's roster
	refusedTaskRole   = "task_role"   // a task from a member who is not centre or admin
	refusedCommitRole = "commit_role" // a roster change from a member who is not admin
	refusedSender     = "sender"      // the entry names another sender or signer
	refusedMalformed  = "malformed"   // not an envelope / not a commit
	refusedEpoch      = "epoch"       // sealed in an epoch this node has not reached
	refusedStale      = "stale_epoch" // sealed in an epoch that has ended
	refusedRemoved    = "removed"     // a subscription ended: its identity left the roster
)

// mayRead decides whether the connection's identity may subscribe to op:
// on an operation with a roster only its members may; on one without, only
// with OpenOps.
func (c *conn) mayRead(op string) *refusal {
	r := c.s.log.Roster(op)
	if r == nil {
		if c.s.cfg.OpenOps {
			return nil
		}
		return refuse(wire.CodeForbidden, refusedNoRoster, "operation %q has no roster yet", op)
	}
	if r.Index(c.identityKey()) < 0 {
		return refuse(wire.CodeForbidden, refusedNotMember, "not a member of operation %q", op)
	}
	return nil
}

// mayPublish decides whether the connection's identity may append p.
//   - Without a roster: a roster commit (a genesis, which the FSM verifies)
//     signed by the publisher; anything with OpenOps.
//   - With a roster: members only. A message or task must be sealed in the
//     current epoch with the publisher's own sender index; tasks only from
//     centre and admin members. A roster commit must be signed by the
//     publisher, who must be an admin unless the commit is a lone update of
//     its own leaf key (which any member may commit).
func (c *conn) mayPublish(p *wire.Publish) *refusal {
	me := c.identityKey()
	r := c.s.log.Roster(p.Op)
	if r == nil {
		if c.s.cfg.OpenOps {
			return nil
		}
		if p.Kind != wire.KindCommit {
			return refuse(wire.CodeForbidden, refusedNoRoster, "operation %q has no roster yet: only a genesis roster commit may be published", p.Op)
		}
		_, rf := checkSigner(p.Envelope, me)
		return rf
	}
	m, ok := r.Member(me)
	if !ok {
		return refuse(wire.CodeForbidden, refusedNotMember, "not a member of operation %q", p.Op)
	}
	switch p.Kind {
	case wire.KindCommit:
		cm, rf := checkSigner(p.Envelope, me)
		if rf != nil {
			return rf
		}
		if m.Role == crypto.RoleAdmin {
			return nil
		}
		if len(cm.Changes) == 1 && cm.Changes[0].Kind == crypto.ChangeKeyUpdate {
			return nil
		}
		return refuse(wire.CodeForbidden, refusedCommitRole, "only admins change the roster of %q (role %s)", p.Op, m.Role)
	case wire.KindTask:
		if m.Role != crypto.RoleAdmin && m.Role != crypto.RoleCentre {
			return refuse(wire.CodeForbidden, refusedTaskRole, "only centre and admin members send tasking in %q (role %s)", p.Op, m.Role)
		}
	}
	return checkSender(r, p.Envelope, me)
}

// checkSigner requires entry to be a roster commit signed by me.
func checkSigner(entry []byte, me [32]byte) (*crypto.Commit, *refusal) {
	cm, err := crypto.DecodeCommit(entry)
	if err != nil {
		return nil, refuse(wire.CodeForbidden, refusedMalformed, "not a roster commit: %v", err)
	}
	if cm.Signer != me {
		return nil, refuse(wire.CodeForbidden, refusedSender, "the commit is signed by another identity than the connection's")
	}
	return cm, nil
}

// checkSender requires env to be an envelope sealed in r's epoch whose
// sender index is me. An envelope from an earlier epoch is stale (the
// sender re-seals it); one from a later epoch means this node has not yet
// applied the commit that started it (retry shortly).
func checkSender(r *crypto.Roster, env []byte, me [32]byte) *refusal {
	h, err := crypto.ParseEnvelopeHeader(env)
	if err != nil {
		return refuse(wire.CodeForbidden, refusedMalformed, "not an envelope: %v", err)
	}
	switch {
	case h.Epoch < r.Epoch:
		return refuse(wire.CodeStaleHead, refusedStale, "sealed in epoch %d, the operation is in epoch %d", h.Epoch, r.Epoch)
	case h.Epoch > r.Epoch:
		return refuse(wire.CodeUnavailable, refusedEpoch, "sealed in epoch %d, this node has applied epoch %d: retry", h.Epoch, r.Epoch)
	case int(h.SenderIndex) >= len(r.Members) || r.Members[h.SenderIndex].Key != me:
		return refuse(wire.CodeForbidden, refusedSender, "the envelope names another sender than the connection's identity")
	}
	return nil
}

// sendRefusal counts rf and answers request req on op with it.
func (c *conn) sendRefusal(req uint64, op string, rf *refusal) {
	c.s.stats.refused.inc(rf.reason)
	c.log.Debug("request refused", "op", op, "reason", rf.reason, "msg", rf.msg)
	c.send(errorFrame(req, op, rf.code, rf.msg))
}

// announce passes committed batches to the subscribers, then, for every
// batch holding a roster commit, ends the subscriptions of identities the
// operation's roster no longer lists (after they were sent the commit that
// removed them, if they were live). It runs on the Log's commit path and
// never blocks on a client.
func (s *Server) announce(bs []Batch) {
	s.hub.announce(bs)
	for i := range bs {
		if slices.Contains(bs[i].Kinds, uint8(wire.KindCommit)) {
			s.revokeNonMembers(bs[i].Op)
		}
	}
}

func (s *Server) revokeNonMembers(op string) {
	r := s.log.Roster(op)
	if r == nil {
		return
	}
	s.hub.mu.RLock()
	var gone []*subscription
	for sub := range s.hub.subs[op] {
		if r.Index(sub.c.identityKey()) < 0 {
			gone = append(gone, sub)
		}
	}
	s.hub.mu.RUnlock()
	for _, sub := range gone {
		c := sub.c
		c.mu.Lock()
		mine := c.subs[op] == sub
		if mine {
			sub.endLocked()
			delete(c.subs, op)
		}
		c.mu.Unlock()
		s.hub.remove(sub)
		if mine {
			s.stats.refused.inc(refusedRemoved)
			c.send(errorFrame(0, op, wire.CodeForbidden, fmt.Sprintf("no longer a member of operation %q", op)))
		}
	}
}
