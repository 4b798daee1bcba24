package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"liaison/relay/wire"
)

// maxGapResyncs is how many times in a row a subscription re-subscribes on
// the same connection after a deliver frame that skipped entries before the
// client drops the connection and reconnects.
const maxGapResyncs = 3

// Message is one entry of an operation's log.
type Message struct {
	// Op is the operation.
	Op string
	// Seq is the entry's sequence number.
	Seq uint64
	// Chain is the entry's hash chain value, computed by the client:
	// SHA-256(chain of Seq-1 || Envelope).
	Chain [32]byte
	// Envelope is the entry's bytes, exactly as published. It may share
	// its backing array with the other entries that came in the same
	// frame (its capacity ends where it does): copy it to keep it long
	// without keeping them.
	Envelope []byte
	// Kind is what the entry holds: wire.KindMessage (an envelope) or
	// wire.KindCommit (a roster commit). The relay stores it beside the
	// entry; it is not covered by the chain hash.
	Kind wire.Kind
	// Retained marks a roster commit the relay kept below the oldest entry
	// it still holds (WithRetained). Its Seq is below the Gap that
	// announced it, and Chain is zero: the relay's chain cannot be checked
	// across removed entries. The commit is verified by its own signature
	// and roster chain.
	Retained bool
	// Gap, when set, marks that the relay removed entries Gap.From up to
	// Seq (inclusive) by retention before this client read them
	// (WithRetained). The message has no Envelope; Chain is the relay's
	// chain hash of entry Seq, which later entries are checked against.
	Gap *Gap
}

// Subscription receives an operation's entries in sequence order, each
// exactly once, across reconnects.
type Subscription struct {
	c    *Client
	op   string
	from uint64
	ch   chan Message

	ready    chan struct{} // closed on the first subscribed answer
	closing  chan struct{} // closed by finish
	finOnce  sync.Once
	err      error // terminal error, set before closing is closed
	sendMu   sync.Mutex
	chClosed bool // under sendMu

	// Protected by Client.mu.
	sentOn   *conn  // connection the current subscribe was sent on
	req      uint64 // outstanding subscribe request, 0 if none
	head     uint64 // from the first subscribed answer
	behind   bool   // the first subscribed answer said the node is behind
	first    uint64
	gotFirst bool

	// Protected by mu: touched by the connection's reader and by install.
	mu        sync.Mutex
	next      uint64   // next sequence expected
	chain     [32]byte // chain hash of entry next-1
	haveChain bool     // chain is known (always, once from==1 or anything was received)
	gaps      int      // consecutive gap resyncs on this connection
	finished  bool

	// WithRetained: retainedLo..next-1 is the range of roster commits the
	// relay may still send (Retained frames) after a gap; lastRetained is
	// the last one passed on.
	retained     bool
	retainedLo   uint64
	lastRetained uint64
}

// Subscribe subscribes to operation op from sequence from (1 for the whole
// log) and returns once the relay confirmed it. A relay error ends it: for
// retention, the error is a *CompactedError (errors.Is ErrCompacted); other
// relay errors are exposed with errors.As as *wire.Error. A client has at
// most one open subscription per operation.
func (c *Client) Subscribe(ctx context.Context, op string, from uint64, opts ...SubscribeOption) (*Subscription, error) {
	if !wire.ValidOp(op) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidOp, op)
	}
	if from == 0 {
		return nil, errors.New("clients: subscribe: from must be at least 1")
	}
	s := &Subscription{
		c:       c,
		op:      op,
		from:    from,
		ch:      make(chan Message, c.opts.SubscriptionBuffer),
		ready:   make(chan struct{}),
		closing: make(chan struct{}),
		next:    from,
	}
	if from == 1 {
		s.haveChain = true // chain_0 is 32 zero bytes
	}
	for _, o := range opts {
		o(s)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := c.subs[op]; ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrAlreadySubscribed, op)
	}
	c.subs[op] = s
	cn := c.cur
	var f *wire.Subscribe
	if cn != nil {
		f = s.resubscribeLocked(c, cn)
	}
	c.mu.Unlock()
	if f != nil {
		cn.writeFrame(f) // on failure the supervisor reconnects and re-sends
	}
	select {
	case <-s.ready:
		return s, nil
	case <-s.closing:
		select {
		case <-s.ready:
			// Confirmed, then ended at once (say, by a chain mismatch
			// in the first frame): the caller sees it through Err.
			return s, nil
		default:
		}
		return nil, s.err
	case <-ctx.Done():
		s.finish(ctx.Err(), true)
		return nil, fmt.Errorf("clients: subscribe to %s: %w", op, ctx.Err())
	}
}

// SubscribeOption modifies one Subscribe call.
type SubscribeOption func(*Subscription)

// WithPrevChain gives the chain hash of entry from-1, as computed earlier
// (the Chain of the last Message received, persisted by the caller). The
// relay's history is then verified from the first frame on; without it, a
// subscription from beyond 1 trusts the first frame's prev field. It is
// ignored when from is 1 (chain_0 is all zero).
func WithPrevChain(chain [32]byte) SubscribeOption {
	return func(s *Subscription) {
		if s.from > 1 {
			s.chain, s.haveChain = chain, true
		}
	}
}

// Messages returns the channel of entries. It is closed when the
// subscription ends (Close, Client.Close, or a terminal error: see Err).
// The channel is bounded; while it is full the client stops reading from its
// connection (publish acks included), so drain it from a goroutine that does
// not wait on Publish.
func (s *Subscription) Messages() <-chan Message { return s.ch }

// Op returns the operation name.
func (s *Subscription) Op() string { return s.op }

// Head returns the last sequence committed on the relay when the
// subscription started (0 for an empty log), from the first subscribed
// answer. A reader that wants "everything up to now" stops after it.
func (s *Subscription) Head() uint64 {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.head
}

// Behind reports whether the relay answered the first subscribe saying it
// cannot confirm it is current (no leader, or still applying): Head may then
// be older than the cluster's, and a reader that wants "everything up to
// now" should say so or try another node.
func (s *Subscription) Behind() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.behind
}

// Next returns the next sequence the subscription expects: one more than the
// last entry received.
func (s *Subscription) Next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Err returns the error that ended the subscription once Messages is closed:
// ErrClosed after Client.Close, a *ChainMismatchError, a *CompactedError or
// a relay error; nil after Close or while the subscription is running.
func (s *Subscription) Err() error {
	select {
	case <-s.closing:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription and closes its channel. It is idempotent.
func (s *Subscription) Close() error {
	s.finish(nil, true)
	return nil
}

// finish ends the subscription with err. unsub sends an unsubscribe frame on
// the live connection.
func (s *Subscription) finish(err error, unsub bool) {
	s.finOnce.Do(func() {
		s.err = err
		s.mu.Lock()
		s.finished = true
		s.mu.Unlock()
		c := s.c
		c.mu.Lock()
		if c.subs[s.op] == s {
			delete(c.subs, s.op)
		}
		if s.req != 0 {
			delete(c.subReqs, s.req)
			s.req = 0
		}
		cn := c.cur
		c.mu.Unlock()
		// Only now, once the operation is free for a new Subscribe.
		close(s.closing)
		if unsub && cn != nil {
			cn.writeFrame(&wire.Unsubscribe{Req: c.nextReq(), Op: s.op})
		}
		s.sendMu.Lock()
		s.chClosed = true
		close(s.ch)
		s.sendMu.Unlock()
	})
}

// resubscribeLocked prepares a subscribe frame from the next expected
// sequence for cn, or returns nil if one was already sent there. c.mu is held.
func (s *Subscription) resubscribeLocked(c *Client, cn *conn) *wire.Subscribe {
	if s.sentOn == cn {
		return nil
	}
	s.mu.Lock()
	from, finished := s.next, s.finished
	s.gaps = 0
	s.mu.Unlock()
	if finished {
		return nil
	}
	s.sentOn = cn
	return s.newSubscribeLocked(c, from)
}

func (s *Subscription) newSubscribeLocked(c *Client, from uint64) *wire.Subscribe {
	if s.req != 0 {
		delete(c.subReqs, s.req)
	}
	s.req = c.nextReq()
	c.subReqs[s.req] = s
	return &wire.Subscribe{Req: s.req, Op: s.op, From: from, Retained: s.retained}
}

func (c *Client) handleSubscribed(cn *conn, f *wire.Subscribed) error {
	c.mu.Lock()
	s, ok := c.subReqs[f.Req]
	if !ok {
		c.mu.Unlock()
		return nil // answer to a subscribe that was superseded
	}
	if f.Op != s.op {
		c.mu.Unlock()
		return fmt.Errorf("%w: subscribed for %q answers a subscribe to %q", ErrProtocol, f.Op, s.op)
	}
	delete(c.subReqs, f.Req)
	if s.req == f.Req {
		s.req = 0
	}
	first := !s.gotFirst
	if first {
		s.gotFirst = true
		s.head, s.first, s.behind = f.Head, f.First, f.Behind
	}
	c.mu.Unlock()
	c.log.Debug("subscribed", "node", cn.node, "op", f.Op, "from", f.From, "head", f.Head)
	if first {
		close(s.ready)
	}
	if len(f.Prev) != 0 {
		return s.onCompactedStart(c, f)
	}
	return nil
}

// subscribeFailed handles an error frame answering a subscribe.
func (s *Subscription) subscribeFailed(c *Client, e *wire.Error) error {
	c.mu.Lock()
	if s.req == e.Req {
		s.req = 0
	}
	c.mu.Unlock()
	if e.Code.Retryable() {
		// Try again, possibly on another node.
		return fmt.Errorf("subscribe to %s: %w", s.op, e)
	}
	s.mu.Lock()
	from := s.next
	s.mu.Unlock()
	if e.Code == wire.CodeCompacted {
		s.finish(&CompactedError{Op: s.op, From: from, Oldest: e.Seq, Wire: e}, false)
	} else {
		s.finish(fmt.Errorf("clients: subscribe to %s from %d: %w", s.op, from, e), false)
	}
	return nil
}

// msgBufs holds the slices handleDeliver collects a frame's messages in
// before passing them on.
var msgBufs = sync.Pool{New: func() any { return new([]Message) }}

// handleDeliver verifies a deliver frame against the subscription's state
// and passes on the entries it has not seen, in order. It never passes on a
// frame that starts beyond the next expected sequence.
func (c *Client) handleDeliver(cn *conn, d *wire.Deliver) error {
	c.mu.Lock()
	s := c.subs[d.Op]
	c.mu.Unlock()
	if s == nil {
		return nil // late frame for a subscription that ended
	}

	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return nil
	}
	next := s.next
	if d.Seq > next {
		s.gaps++
		gaps := s.gaps
		s.mu.Unlock()
		return c.onGap(cn, s, d, next, gaps)
	}
	h := [32]byte(d.Prev)
	if d.Seq == next && s.haveChain && h != s.chain {
		s.mu.Unlock()
		s.finish(&ChainMismatchError{Op: s.op, Seq: next - 1, Want: s.chain, Got: h}, true)
		return nil
	}
	mp := msgBufs.Get().(*[]Message)
	msgs := (*mp)[:0]
	defer func() {
		clear(msgs) // drop the references to the envelopes
		*mp = msgs[:0]
		msgBufs.Put(mp)
	}()
	var chain wire.Chainer
	for i, env := range d.Envelopes {
		seq := d.Seq + uint64(i)
		h = chain.Next(h, env)
		switch {
		case seq+1 < next:
			// already seen, and not the last one seen
		case seq+1 == next:
			if s.haveChain && h != s.chain {
				s.mu.Unlock()
				s.finish(&ChainMismatchError{Op: s.op, Seq: seq, Want: s.chain, Got: h}, true)
				return nil
			}
		default:
			msgs = append(msgs, Message{Op: d.Op, Seq: seq, Chain: h, Envelope: env, Kind: d.KindOf(i)})
		}
	}
	if len(msgs) > 0 {
		s.next = msgs[len(msgs)-1].Seq + 1
		s.chain = h
		s.haveChain = true
		s.gaps = 0
	}
	s.mu.Unlock()
	s.pass(c, msgs)
	return nil
}

// onGap handles a deliver frame that starts beyond the next expected
// sequence: it is dropped, and the subscription restarts from next on this
// connection (or the connection is dropped after repeated gaps).
func (c *Client) onGap(cn *conn, s *Subscription, d *wire.Deliver, next uint64, gaps int) error {
	c.log.Warn("deliver frame skips entries; dropped", "node", cn.node, "op", d.Op, "seq", d.Seq, "expected", next)
	if gaps > maxGapResyncs {
		return fmt.Errorf("%w: %s: repeated gaps (frame at %d, expected %d)", ErrProtocol, d.Op, d.Seq, next)
	}
	c.mu.Lock()
	if s.req != 0 && s.sentOn == cn {
		// A subscribe is outstanding on this connection; the relay will
		// restart from a sequence at or before next.
		c.mu.Unlock()
		return nil
	}
	s.sentOn = cn
	f := s.newSubscribeLocked(c, next)
	c.mu.Unlock()
	return cn.writeFrame(f)
}
