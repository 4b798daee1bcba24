package session

import (
	"fmt"

	"liaison/clients"
)

// Retention: when the relay removed entries before this device read them,
// the subscription (clients.WithRetained) announces the gap, then passes on
// the roster commits the relay kept in it, then continues from the oldest
// entry held. The session processes those commits (verified by signature
// and roster chain, as always) so that it holds the current epoch's keys,
// and only then moves past the gap, continuing both chains from the
// relay's anchors. Those anchors are the relay's word: the log heads in
// later members' envelopes are checked against the chain continued from
// them, so a false anchor shows up as a warning.

// gapState is an announced gap whose kept commits are being processed.
type gapState struct {
	From       uint64 `cbor:"1,keyasint"` // first entry removed unread
	End        uint64 `cbor:"2,keyasint"` // last entry of the gap
	RelayChain []byte `cbor:"3,keyasint"`
	LogChain   []byte `cbor:"4,keyasint"`
	Want       int    `cbor:"5,keyasint,omitempty"` // kept commits announced
	Got        int    `cbor:"6,keyasint,omitempty"` // kept commits received
}

// applyGap starts processing a retention gap marker.
func (s *Session) applyGap(oc *opCtx, m clients.Message) error {
	st := oc.st
	if m.Gap.From != st.Seq+1 || m.Seq < m.Gap.From {
		return fmt.Errorf("session: %s: retention gap %d..%d does not follow entry %d", st.Op, m.Gap.From, m.Seq, st.Seq)
	}
	st.Gap = &gapState{From: m.Gap.From, End: m.Seq, RelayChain: m.Chain[:], LogChain: m.Gap.LogAnchor[:], Want: m.Gap.Retained}
	s.finishGapIfDone(oc)
	return nil
}

// applyRetained processes a roster commit kept in the current gap.
func (s *Session) applyRetained(oc *opCtx, m clients.Message) error {
	st := oc.st
	if st.Gap == nil || m.Seq < st.Gap.From || m.Seq > st.Gap.End {
		return fmt.Errorf("session: %s: kept commit %d outside an announced gap", st.Op, m.Seq)
	}
	st.Gap.Got++
	if m.Seq > st.LastRetained {
		e := s.applyCommit(oc, m.Envelope)
		e.Seq = m.Seq
		if e.TimeMS == 0 {
			e.TimeMS = s.nowMS()
		}
		if len(e.Warnings) > 0 {
			st.Anomalies++
		}
		st.LastRetained = m.Seq
		st.Entries = append(st.Entries, e)
		oc.fresh = append(oc.fresh, e)
	}
	s.finishGapIfDone(oc)
	return nil
}

// finishGapIfDone moves past the gap once its kept commits are processed.
func (s *Session) finishGapIfDone(oc *opCtx) {
	st := oc.st
	g := st.Gap
	if g == nil || g.Got < g.Want {
		return
	}
	e := Entry{
		Seq:     g.End,
		Kind:    EntryCompacted,
		TimeMS:  s.nowMS(),
		Summary: fmt.Sprintf("entries %d to %d were removed by the relay's retention before this device read them", g.From, g.End),
	}
	st.Seq, st.RelayChain, st.LogChain = g.End, g.RelayChain, g.LogChain
	// The log chain restarts at the anchor: older positions named by
	// envelopes can no longer be checked.
	st.ChainBase, st.Chains = g.End, [][]byte{g.LogChain}
	st.Gap = nil
	st.Entries = append(st.Entries, e)
	oc.fresh = append(oc.fresh, e)
}

// gapOpen reports whether a gap's kept commits are still awaited.
func (st *opState) gapOpen() bool { return st.Gap != nil }
