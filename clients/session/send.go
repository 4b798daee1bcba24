package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"liaison/clients"
	"liaison/crypto"
	"liaison/relay/wire"
)

// SendResult is the outcome of Send.
type SendResult struct {
	Seq   uint64 // the message's sequence in the log
	Dup   bool   // the relay had it already (a retry)
	Epoch uint64
	Index uint32 // own ratchet index used
}

// Send encrypts text as a chat message to op and publishes it. It first
// syncs (so the message is sealed in the current epoch and names the
// current log head), and saves the state — with the sending key consumed
// and the plaintext kept as pending — BEFORE publishing, so a key is never
// used twice even across a crash. If the outcome of the publish is unknown
// the message stays pending and later Syncs re-send it with the same msgid;
// if the relay refuses it, it is dropped from the pending list.
func (s *Session) Send(ctx context.Context, op, text string, class wire.Class) (SendResult, error) {
	return s.send(ctx, op, pendingMsg{Class: uint8(class), Type: TypeChat, Text: text}, nil)
}

// send syncs op, lets check (if not nil) inspect the state, then seals and
// publishes p (its msgid and time are set here).
func (s *Session) send(ctx context.Context, op string, p pendingMsg, check func(oc *opCtx, p *pendingMsg) error) (SendResult, error) {
	if s.c == nil {
		return SendResult{}, ErrNoRelay
	}
	if !wire.ValidOp(op) {
		return SendResult{}, fmt.Errorf("%w: %q", clients.ErrInvalidOp, op)
	}
	if _, err := EncodePayload(p.payload()); err != nil {
		return SendResult{}, err // refuse before touching any state
	}
	var res SendResult
	_, err := s.withOp(op, func(oc *opCtx) error {
		if err := s.syncLocked(ctx, oc); err != nil {
			return err
		}
		if check != nil {
			if err := check(oc, &p); err != nil {
				return err
			}
		}
		id := clients.NewMsgID()
		p.MsgID, p.TimeMS = id[:], s.nowMS()
		// A message sealed just before a commit got into the log is refused
		// with stale_head (the relay takes only messages of the current
		// epoch): catch up and seal it again, under the same msgid.
		for attempt := 1; ; attempt++ {
			r, err := s.sealAndPublish(ctx, oc, p)
			if err == nil {
				res = r
				return s.catchUp(ctx, oc)
			}
			if !isCode(err, wire.CodeStaleHead) || attempt >= maxCommitAttempts {
				return err
			}
			if err := s.catchUp(ctx, oc); err != nil {
				return err
			}
		}
	})
	return res, err
}

// sealAndPublish seals p's text in the current epoch, saves the state with
// p pending (a sending key is never used twice, even after a crash), and
// publishes it under p's msgid. A refused publish is dropped from pending.
func (s *Session) sealAndPublish(ctx context.Context, oc *opCtx, p pendingMsg) (SendResult, error) {
	if err := s.seal(oc, &p); err != nil {
		return SendResult{}, err
	}
	sum := [32]byte(p.Hash)
	if err := s.save(oc); err != nil {
		return SendResult{}, err
	}
	res := SendResult{Epoch: p.Epoch, Index: p.Index}
	pr, err := s.c.Publish(ctx, oc.st.Op, p.Env, p.publishOpts()...)
	if err != nil {
		if definite(err) {
			dropPending(oc.st, sum)
			if serr := s.save(oc); serr != nil {
				return res, serr
			}
		}
		return res, err
	}
	res.Seq, res.Dup = pr.Seq, pr.Dup
	return res, nil
}

// seal seals p's text in the current epoch, naming the current log head,
// fills in p's envelope fields and appends p to the pending list (the
// caller saves the state before publishing).
func (s *Session) seal(oc *opCtx, p *pendingMsg) error {
	if oc.g == nil || !oc.g.IsMember() {
		return fmt.Errorf("%w: %s", ErrNotMember, oc.st.Op)
	}
	payload, err := EncodePayload(p.payload())
	if err != nil {
		return err
	}
	env, err := oc.g.Seal(payload, crypto.NewLogHead(oc.st.Seq, oc.st.logChain()))
	clear(payload)
	if err != nil {
		return err
	}
	h, _ := crypto.ParseEnvelopeHeader(env)
	sum := sha256.Sum256(env)
	p.Hash, p.Env, p.Epoch, p.Index = sum[:], env, h.Epoch, h.Index
	oc.st.Pending = append(oc.st.Pending, *p)
	return nil
}

func (p *pendingMsg) publishOpts() []clients.PublishOption {
	return []clients.PublishOption{clients.WithMsgID(clients.MsgID(p.MsgID)), clients.WithClass(wire.Class(p.Class)), clients.WithKind(wire.Kind(p.Kind))}
}

// definite reports whether a publish error is a refusal (the entry was not
// stored), as opposed to an unknown outcome.
func definite(err error) bool {
	var we *wire.Error
	return !errors.Is(err, clients.ErrUnknownOutcome) && errors.As(err, &we) && !we.Code.Retryable()
}

func dropPending(st *opState, sum [32]byte) {
	for i, p := range st.Pending {
		if string(p.Hash) == string(sum[:]) {
			st.Pending = append(st.Pending[:i:i], st.Pending[i+1:]...)
			return
		}
	}
}

// flushPending re-publishes own messages still pending after a catch-up
// (their earlier publish had an unknown outcome), with their msgid: the
// relay acks a committed one as a duplicate instead of storing it twice.
func (s *Session) flushPending(ctx context.Context, oc *opCtx) error {
	for _, p := range append([]pendingMsg(nil), oc.st.Pending...) {
		_, err := s.c.Publish(ctx, oc.st.Op, p.Env, p.publishOpts()...)
		switch {
		case err == nil:
		case isCode(err, wire.CodeStaleHead):
			// Sealed in an epoch that ended before it reached the log:
			// seal it again in the current one, under the same msgid.
			dropPending(oc.st, [32]byte(p.Hash))
			p.Hash, p.Env = nil, nil
			if _, err := s.sealAndPublish(ctx, oc, p); err != nil {
				s.warn(oc.st.Op, fmt.Sprintf("your message %q could not be re-sent in the current epoch: %v", abbreviate(p.Text), err))
			}
		case definite(err):
			dropPending(oc.st, [32]byte(p.Hash))
			s.warn(oc.st.Op, fmt.Sprintf("your message %q was refused by the relay and not sent: %v", abbreviate(p.Text), err))
		default:
			return err
		}
	}
	return nil
}

func abbreviate(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
