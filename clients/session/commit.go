package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"liaison/clients"
	"liaison/crypto"
	"liaison/relay/wire"
)

// ErrOpExists is returned by CreateOp when the operation already has
// entries on the relay or local state.
var ErrOpExists = errors.New("session: operation already exists")

func isCode(err error, code wire.Code) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == code
}

// CreateOp creates operation op with this identity as its admin and the
// invited members: it publishes the genesis commit, then processes it back
// from the log (which is how this identity joins). It returns the new
// history entries.
func (s *Session) CreateOp(ctx context.Context, op string, invites []crypto.Invite) ([]Entry, error) {
	if s.c == nil {
		return nil, ErrNoRelay
	}
	return s.withOp(op, func(oc *opCtx) error {
		if oc.st.Seq > 0 || oc.g != nil {
			return fmt.Errorf("%w: %s (local state at entry %d)", ErrOpExists, op, oc.st.Seq)
		}
		g, genesis, err := crypto.NewGroup(s.opts.Rand, s.id, op, invites)
		if err != nil {
			return err
		}
		g.Destroy() // the state comes from the log, like everyone else's
		if _, err := s.c.Publish(ctx, op, genesis, clients.WithKind(wire.KindCommit)); err != nil {
			if isCode(err, wire.CodeStaleHead) {
				return fmt.Errorf("%w on the relay: %s", ErrOpExists, op)
			}
			return err
		}
		return s.catchUp(ctx, oc)
	})
}

// commitLocked builds a commit with build (called again after every
// stale_head, against the new roster), saves the state with the pending
// commit (its new leaf key must survive a crash), publishes it and
// processes it back from the log.
func (s *Session) commitLocked(ctx context.Context, oc *opCtx, build func(r *crypto.Roster) ([]crypto.Change, error)) error {
	for attempt := 1; ; attempt++ {
		if oc.g == nil || !oc.g.IsMember() {
			return fmt.Errorf("%w: %s", ErrNotMember, oc.st.Op)
		}
		changes, err := build(oc.g.Roster())
		if err != nil {
			return err
		}
		b, err := oc.g.Commit(s.opts.Rand, changes...)
		if err != nil {
			return err
		}
		if err := s.save(oc); err != nil {
			return err
		}
		_, err = s.c.Publish(ctx, oc.st.Op, b, clients.WithKind(wire.KindCommit))
		if err == nil {
			return s.catchUp(ctx, oc)
		}
		if !isCode(err, wire.CodeStaleHead) || attempt >= maxCommitAttempts {
			return err
		}
		// Another commit got in first: catch up and rebuild (new msgid).
		if err := s.catchUp(ctx, oc); err != nil {
			return err
		}
	}
}

func (s *Session) change(ctx context.Context, op string, build func(r *crypto.Roster) ([]crypto.Change, error)) ([]Entry, error) {
	if s.c == nil {
		return nil, ErrNoRelay
	}
	return s.withOp(op, func(oc *opCtx) error {
		if err := s.catchUp(ctx, oc); err != nil {
			return err
		}
		return s.commitLocked(ctx, oc, build)
	})
}

// Add adds the identity of tok to op with role.
func (s *Session) Add(ctx context.Context, op string, tok *crypto.Token, role crypto.Role) ([]Entry, error) {
	return s.change(ctx, op, func(r *crypto.Roster) ([]crypto.Change, error) {
		if r.Index(tok.SigningKey) >= 0 {
			return nil, fmt.Errorf("session: %s is already a member of %s", tok.Name, op)
		}
		return []crypto.Change{crypto.AddMember(tok, role)}, nil
	})
}

// Remove removes member from op.
func (s *Session) Remove(ctx context.Context, op string, member [32]byte) ([]Entry, error) {
	return s.change(ctx, op, func(r *crypto.Roster) ([]crypto.Change, error) {
		if r.Index(member) < 0 {
			return nil, fmt.Errorf("session: %x is not a member of %s", member[:4], op)
		}
		return []crypto.Change{crypto.RemoveMember(member)}, nil
	})
}

// SetRole gives member a new role in op.
func (s *Session) SetRole(ctx context.Context, op string, member [32]byte, role crypto.Role) ([]Entry, error) {
	return s.change(ctx, op, func(r *crypto.Roster) ([]crypto.Change, error) {
		if r.Index(member) < 0 {
			return nil, fmt.Errorf("session: %x is not a member of %s", member[:4], op)
		}
		return []crypto.Change{crypto.SetRole(member, role)}, nil
	})
}

// KeyUpdate commits a key update for this member now: a new leaf key and a
// new epoch; keys of earlier epochs are deleted once it is processed.
func (s *Session) KeyUpdate(ctx context.Context, op string) ([]Entry, error) {
	return s.change(ctx, op, func(*crypto.Roster) ([]crypto.Change, error) {
		return []crypto.Change{crypto.KeyUpdate()}, nil
	})
}

// maybeKeyUpdate commits a key update when this member's last one (or its
// joining) is older than Options.KeyUpdateAfter. A failure is a warning.
func (s *Session) maybeKeyUpdate(ctx context.Context, oc *opCtx) error {
	if s.opts.KeyUpdateAfter < 0 || oc.g == nil || !oc.g.IsMember() {
		return nil
	}
	if s.nowMS()-oc.st.LastKU < s.opts.KeyUpdateAfter.Milliseconds() {
		return nil
	}
	err := s.commitLocked(ctx, oc, func(*crypto.Roster) ([]crypto.Change, error) {
		return []crypto.Change{crypto.KeyUpdate()}, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		s.warn(oc.st.Op, fmt.Sprintf("timed key update failed: %v", err))
	}
	return nil
}

// VerifyCode is what members compare out of band to confirm they share an
// epoch (same members, same keys, same history of commits): the epoch
// number and a 20-digit code derived from the epoch authenticator.
type VerifyCode struct {
	Op    string
	Epoch uint64
	Code  string // "12345 67890 12345 67890"
}

// Verify returns op's current verification code from local state (call
// Sync first).
func (s *Session) Verify(op string) (VerifyCode, error) {
	var v VerifyCode
	err := s.readOp(op, func(oc *opCtx) error {
		if oc.g == nil || !oc.g.IsMember() {
			return fmt.Errorf("%w: %s", ErrNotMember, op)
		}
		v = VerifyCode{Op: op, Epoch: oc.g.Epoch(), Code: verifyDigits(op, oc.g.Epoch(), oc.g.EpochAuthenticator())}
		return nil
	})
	return v, err
}

// verifyDigits hashes the authenticator (with its own context string, so
// the code reveals nothing reusable) into 4 groups of 5 digits.
func verifyDigits(op string, epoch uint64, auth [32]byte) string {
	h := sha256.New()
	h.Write([]byte("liaison/v1/verify-code\x00"))
	h.Write([]byte{byte(len(op))})
	h.Write([]byte(op))
	h.Write(binary.BigEndian.AppendUint64(nil, epoch))
	h.Write(auth[:])
	d := h.Sum(nil)
	var groups []string
	for i := range 4 {
		var v uint64
		for _, b := range d[5*i : 5*i+5] {
			v = v<<8 | uint64(b)
		}
		groups = append(groups, fmt.Sprintf("%05d", v%100000))
	}
	return strings.Join(groups, " ")
}
