package clients

import (
	"fmt"

	"liaison/relay/wire"
)

// Gap describes entries the relay removed by retention before this client
// read them (see Message.Gap and docs/protocol.md, "Retention").
type Gap struct {
	// From is the first entry removed unread; the gap ends at the marker
	// message's Seq.
	From uint64
	// LogAnchor is the relay's crypto.LogChain hash of the entry at the
	// marker's Seq: where an end-to-end reader continues its log chain.
	// It is the relay's word until later members' envelopes, which name
	// log positions by this chain, corroborate it.
	LogAnchor [32]byte
	// Retained is the number of roster commits kept in the gap, passed on
	// next as Retained messages (fewer if the subscription ends first).
	Retained int
}

// WithRetained lets the subscription continue past entries the relay
// removed by retention instead of failing with a *CompactedError: the client
// receives a Gap marker message, then the roster commits the relay kept in
// the gap (Message.Retained), then the entries from the oldest one held.
// Members of an end-to-end encrypted operation need those commits to hold
// the current epoch's keys.
func WithRetained() SubscribeOption {
	return func(s *Subscription) { s.retained = true }
}

// onCompactedStart handles a subscribed frame that starts above the next
// expected sequence because the relay removed the entries in between.
func (s *Subscription) onCompactedStart(c *Client, f *wire.Subscribed) error {
	s.mu.Lock()
	if s.finished || f.From <= s.next {
		s.mu.Unlock()
		return nil
	}
	if !s.retained {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s: subscribed from %d with anchors that were not asked for", ErrProtocol, s.op, f.From)
	}
	gap := &Gap{From: s.next, LogAnchor: [32]byte(f.LogAnchor), Retained: int(f.Retained)}
	m := Message{Op: s.op, Seq: f.From - 1, Chain: [32]byte(f.Prev), Gap: gap}
	s.retainedLo, s.lastRetained = s.next, 0
	s.next, s.chain, s.haveChain = f.From, m.Chain, true
	s.gaps = 0
	s.mu.Unlock()
	c.log.Info("entries removed by retention before they were read", "op", s.op, "from", gap.From, "to", m.Seq)
	s.pass(c, []Message{m})
	return nil
}

// handleRetained passes on a roster commit kept in a gap, once.
func (c *Client) handleRetained(cn *conn, f *wire.Retained) error {
	c.mu.Lock()
	s := c.subs[f.Op]
	ok := s != nil && s.sentOn == cn
	c.mu.Unlock()
	if !ok {
		return nil
	}
	s.mu.Lock()
	if s.finished || !s.retained || f.Seq < s.retainedLo || f.Seq >= s.next || f.Seq <= s.lastRetained {
		s.mu.Unlock()
		return nil // outside the announced gap, or already passed on
	}
	s.lastRetained = f.Seq
	s.mu.Unlock()
	s.pass(c, []Message{{Op: f.Op, Seq: f.Seq, Envelope: f.Entry, Kind: wire.KindCommit, Retained: true}})
	return nil
}

// subscriptionEnded handles the relay ending a subscription (an error frame
// with no request and an operation): retryable errors and, with
// WithRetained, retention resubscribe from the next expected entry; others
// end it.
func (c *Client) subscriptionEnded(cn *conn, e *wire.Error) error {
	c.mu.Lock()
	s := c.subs[e.Op]
	if s == nil || s.sentOn != cn {
		c.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	from, retained := s.next, s.retained
	s.gaps++
	gaps := s.gaps
	s.mu.Unlock()
	c.log.Warn("relay ended a subscription", "node", cn.node, "op", e.Op, "code", e.Code.String(), "message", e.Message)
	if e.Code.Retryable() || (e.Code == wire.CodeCompacted && retained) {
		if gaps > maxGapResyncs {
			c.mu.Unlock()
			return fmt.Errorf("%w: %s: the relay keeps ending the subscription (%s)", ErrProtocol, e.Op, e.Code)
		}
		f := s.newSubscribeLocked(c, from)
		c.mu.Unlock()
		return cn.writeFrame(f)
	}
	c.mu.Unlock()
	if e.Code == wire.CodeCompacted {
		s.finish(&CompactedError{Op: s.op, From: from, Oldest: e.Seq, Wire: e}, false)
	} else {
		s.finish(fmt.Errorf("clients: subscription to %s ended at %d: %w", s.op, from, e), false)
	}
	return nil
}

// pass hands msgs to the subscriber in order, unless the subscription or
// the client closes first.
func (s *Subscription) pass(c *Client, msgs []Message) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.chClosed {
		return
	}
	for _, m := range msgs {
		select {
		case s.ch <- m:
			continue
		default:
		}
		select {
		case s.ch <- m:
		case <-s.closing:
			return
		case <-c.closing:
			return
		}
	}
}
