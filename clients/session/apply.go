package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"liaison/clients"
	"liaison/crypto"
	"liaison/relay/wire"
)

// apply processes log entry m, the one after the last processed, and
// records the history entries it yields. It returns an error only for local
// failures; anything wrong with the entry itself becomes a flagged entry.
func (s *Session) apply(oc *opCtx, m clients.Message) error {
	st := oc.st
	switch {
	case (m.Gap != nil || m.Retained) && m.Seq <= st.Seq && !st.gapOpen():
		return nil // a gap this state has moved past already
	case m.Gap != nil:
		return s.applyGap(oc, m)
	case m.Retained:
		return s.applyRetained(oc, m)
	case st.gapOpen():
		return fmt.Errorf("session: %s: entry %d arrived before the roster commits kept in the retention gap %d..%d", st.Op, m.Seq, st.Gap.From, st.Gap.End)
	}
	if m.Seq != st.Seq+1 {
		return fmt.Errorf("session: %s: expected entry %d, got %d", st.Op, st.Seq+1, m.Seq)
	}
	var e Entry
	switch m.Kind {
	case wire.KindCommit:
		e = s.applyCommit(oc, m.Envelope)
	case wire.KindMessage, wire.KindTask:
		e = s.applyMessage(oc, m.Seq, m.Envelope)
		checkTasking(oc, m.Kind, &e)
	default:
		e = Entry{Kind: EntryRejected, Warnings: []string{fmt.Sprintf("entry of unknown kind %d ignored", m.Kind)}}
	}
	e.Seq = m.Seq
	if e.TimeMS == 0 {
		e.TimeMS = s.nowMS()
	}
	if len(e.Warnings) > 0 {
		st.Anomalies++
	}
	st.advance(m.Seq, m.Chain, crypto.LogChain(st.logChain(), m.Seq, m.Envelope))
	st.Entries = append(st.Entries, e)
	oc.fresh = append(oc.fresh, e)
	return nil
}

func (s *Session) applyCommit(oc *opCtx, b []byte) Entry {
	c, err := crypto.DecodeCommit(b)
	if err != nil {
		return rejected("undecodable roster commit: %v", err)
	}
	if oc.g == nil {
		return s.applyPreJoinCommit(oc, c, b)
	}
	before := oc.g.Roster()
	wasMember := oc.g.IsMember()
	err = oc.g.ProcessCommit(b)
	if err != nil && !errors.Is(err, crypto.ErrNotMember) {
		return rejected("invalid roster commit refused (%v): the relay should not have accepted it", err)
	}
	after := oc.g.Roster()
	e := commitEntry(c, before, after, s.self)
	switch {
	case err != nil && wasMember:
		e.Summary += " — you are no longer a member"
	case err == nil && !wasMember:
		oc.st.JoinEpoch, oc.st.LastKU = after.Epoch, 0
		e.Summary += " — you joined"
	case err == nil && c.Signer == s.self && hasKeyUpdate(c):
		oc.st.LastKU = s.nowMS()
	}
	return e
}

func hasKeyUpdate(c *crypto.Commit) bool {
	for _, ch := range c.Changes {
		if ch.Kind == crypto.ChangeKeyUpdate {
			return true
		}
	}
	return false
}

// applyPreJoinCommit verifies a commit seen before joining, and joins when
// it adds this identity.
func (s *Session) applyPreJoinCommit(oc *opCtx, c *crypto.Commit, b []byte) Entry {
	if c.OpID == oc.st.Op && addsMember(c, s.self) {
		// JoinGroup verifies the whole chain, this commit included: no
		// need to verify it separately first (with hundreds of members,
		// verifying their tokens is most of the cost of joining).
		chain := append(append([][]byte(nil), oc.st.PreJoin...), b)
		if g, err := crypto.JoinGroup(s.id, chain); err == nil {
			e := commitEntry(c, oc.roster, g.Roster(), s.self)
			oc.g, oc.roster = g, nil
			oc.st.PreJoin = nil
			oc.st.Joined, oc.st.JoinEpoch, oc.st.LastKU = true, g.Roster().Epoch, 0
			e.Summary += " — you joined"
			return e
		}
		// Fall through: verify on its own, to say what is wrong.
	}
	var next *crypto.Roster
	var err error
	if oc.roster == nil {
		next, err = crypto.VerifyGenesis(c)
	} else {
		next, err = oc.roster.Apply(c)
	}
	if err == nil && c.OpID != oc.st.Op {
		err = fmt.Errorf("%w: commit names %q", crypto.ErrWrongOperation, c.OpID)
	}
	if err != nil {
		return rejected("invalid roster commit refused (%v): the relay should not have accepted it", err)
	}
	e := commitEntry(c, oc.roster, next, s.self)
	oc.st.PreJoin = append(oc.st.PreJoin, b)
	oc.roster = next
	if next.Index(s.self) < 0 {
		return e
	}
	g, err := crypto.JoinGroup(s.id, oc.st.PreJoin)
	if err != nil {
		e.Warnings = append(e.Warnings, fmt.Sprintf("you were added but cannot join: %v", err))
		return e
	}
	oc.g, oc.roster = g, nil
	oc.st.PreJoin = nil
	oc.st.Joined, oc.st.JoinEpoch, oc.st.LastKU = true, next.Epoch, 0
	e.Summary += " — you joined"
	return e
}

// addsMember reports whether c adds key to the roster.
func addsMember(c *crypto.Commit, key [32]byte) bool {
	for _, ch := range c.Changes {
		if ch.Kind == crypto.ChangeAdd && ch.Token != nil && ch.Token.SigningKey == key {
			return true
		}
	}
	return false
}

func rejected(format string, args ...any) Entry {
	return Entry{Kind: EntryRejected, Warnings: []string{fmt.Sprintf(format, args...)}}
}

func (s *Session) applyMessage(oc *opCtx, seq uint64, env []byte) Entry {
	st := oc.st
	if oc.g == nil {
		return Entry{Kind: EntryBeforeJoin}
	}
	msg, err := oc.g.Open(env)
	var re *crypto.ReplayError
	switch {
	case err == nil:
		defer clear(msg.Plaintext)
		e := Entry{Kind: EntryMessage, Sender: msg.Sender[:], SenderName: msg.SenderName, Epoch: msg.Epoch, Index: msg.Index}
		if p, perr := DecodePayload(msg.Plaintext); perr != nil {
			e.Warnings = append(e.Warnings, fmt.Sprintf("authentic message with unreadable content: %v", perr))
		} else {
			e.Type, e.Text, e.TimeMS = p.Type, p.Text, p.TimeMS
			e.TaskID, e.Priority, e.DueMS, e.State = p.TaskID, wire.Class(p.Priority), p.DueMS, AckState(p.State)
		}
		if msg.Missed > 0 {
			e.Warnings = append(e.Warnings, fmt.Sprintf("%d earlier message(s) from %s not received (dropped, or delayed)", msg.Missed, msg.SenderName))
		}
		if msg.Late {
			e.Warnings = append(e.Warnings, "arrived out of order (fills an earlier gap)")
		}
		e.Warnings = append(e.Warnings, checkLogHead(st, seq, msg.Log, msg.SenderName)...)
		return e
	case errors.Is(err, crypto.ErrOwnEnvelope):
		// Never seal with a key the log shows was used: a state restored
		// from an older copy learns here how far its chain already went.
		if hdr, herr := crypto.ParseEnvelopeHeader(env); herr == nil {
			if serr := oc.g.SkipSent(hdr.Epoch, hdr.Index); serr != nil {
				return rejected("a message signed by you that this device cannot account for: %v", serr)
			}
		}
		h := sha256.Sum256(env)
		for i, p := range st.Pending {
			if string(p.Hash) == string(h[:]) {
				st.Pending = append(st.Pending[:i:i], st.Pending[i+1:]...)
				return p.entry(s.self[:], s.id.Name())
			}
		}
		return rejected("a message signed by you that this device's state does not know (state restored from an older copy, your identity used on another device, or a replay); your sending chain was moved past it")
	case errors.As(err, &re):
		return rejected("replay of %s's message #%d (epoch %d) ignored", memberName(oc, re.Sender), re.Index, re.Epoch)
	case errors.Is(err, crypto.ErrUnknownEpoch):
		h, _ := crypto.ParseEnvelopeHeader(env)
		if st.Joined && h.Epoch < st.JoinEpoch {
			return Entry{Kind: EntryBeforeJoin, Epoch: h.Epoch}
		}
		if !oc.g.IsMember() {
			return Entry{Kind: EntryNotMember, Epoch: h.Epoch}
		}
		return rejected("message of epoch %d whose keys this device no longer holds (or never had)", h.Epoch)
	}
	return rejected("message failed verification: %v", err)
}

// checkLogHead compares the log position the sender had seen with our own
// copy of the log chain.
func checkLogHead(st *opState, seq uint64, lh crypto.LogHead, sender string) []string {
	if lh.Seq >= seq {
		return []string{fmt.Sprintf("%s claims to have seen log entry %d before this entry (%d) existed", sender, lh.Seq, seq)}
	}
	ours, ok := st.chainAt(lh.Seq)
	if !ok {
		return nil // too old to check
	}
	if crypto.NewLogHead(lh.Seq, ours).Hash != lh.Hash {
		return []string{fmt.Sprintf("%s saw a different log at entry %d than you did: the relay may be showing different histories", sender, lh.Seq)}
	}
	return nil
}

func memberName(oc *opCtx, key [32]byte) string {
	if r := oc.currentRoster(); r != nil {
		if m, ok := r.Member(key); ok {
			return m.Name
		}
	}
	return fmt.Sprintf("%x", key[:4])
}

// commitEntry describes commit c taking before (nil for the genesis) to
// after.
func commitEntry(c *crypto.Commit, before, after *crypto.Roster, self [32]byte) Entry {
	name := func(k [32]byte) string {
		if k == self {
			return "you"
		}
		for _, r := range []*crypto.Roster{after, before} {
			if r != nil {
				if m, ok := r.Member(k); ok {
					return m.Name
				}
			}
		}
		return fmt.Sprintf("%x", k[:4])
	}
	signer := name(c.Signer)
	var parts []string
	if before == nil {
		var added []string
		for _, ch := range c.Changes {
			if ch.Token != nil && ch.Token.SigningKey != c.Signer {
				added = append(added, fmt.Sprintf("%s (%s)", name(ch.Token.SigningKey), ch.Role))
			}
		}
		s := fmt.Sprintf("%s created operation %s", signer, c.OpID)
		if len(added) > 0 {
			s += " with " + strings.Join(added, ", ")
		}
		parts = append(parts, s)
	} else {
		for _, ch := range c.Changes {
			switch ch.Kind {
			case crypto.ChangeAdd:
				parts = append(parts, fmt.Sprintf("%s added %s (%s)", signer, name(ch.Token.SigningKey), ch.Role))
			case crypto.ChangeRemove:
				parts = append(parts, fmt.Sprintf("%s removed %s", signer, name(ch.Member)))
			case crypto.ChangeSetRole:
				parts = append(parts, fmt.Sprintf("%s made %s %s", signer, name(ch.Member), ch.Role))
			case crypto.ChangeKeyUpdate:
				if c.Signer == self {
					parts = append(parts, "you updated your key")
				} else {
					parts = append(parts, fmt.Sprintf("%s updated their key", signer))
				}
			}
		}
	}
	var sender []byte
	sender = append(sender, c.Signer[:]...)
	return Entry{
		Kind:       EntryCommit,
		Sender:     sender,
		SenderName: name(c.Signer),
		Epoch:      after.Epoch,
		Summary:    fmt.Sprintf("%s — epoch %d", strings.Join(parts, "; "), after.Epoch),
	}
}
