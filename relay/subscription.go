package relay

import (
	"errors"
	"fmt"

	"liaison/relay/wire"
)

// readBytes bounds the envelope bytes of one log read.
const readBytes = 512 << 10

// subscription is one operation subscribed on one connection. Its fields
// are guarded by its connection's mu.
//
// Exactly one of two things feeds it at a time: while live, the hub's
// commit announcements; otherwise its puller goroutine, reading from the log.
// Both deliver exactly sequence next and advance it under the lock, which is
// what makes delivery gap-free and duplicate-free.
type subscription struct {
	c  *conn
	op string

	next    uint64 // next sequence to deliver
	live    bool
	pulling bool
	ended   bool

	// While retainedFrom is set, the puller first sends the roster commits
	// kept in [retainedFrom, next).
	retainedFrom uint64
}

// endLocked marks the subscription ended (once); c.mu is held.
func (s *subscription) endLocked() {
	if !s.ended {
		s.ended = true
		s.c.s.stats.subs.Add(-1)
	}
}

func (c *conn) subscribe(f *wire.Subscribe) {
	if rf := c.mayRead(f.Op); rf != nil {
		c.sendRefusal(f.Req, f.Op, rf)
		return
	}
	if !c.useOp(f.Req, f.Op) {
		return
	}
	head := c.s.log.Head(f.Op)
	s := &subscription{c: c, op: f.Op, next: f.From, pulling: true}
	confirm := &wire.Subscribed{Req: f.Req, Op: f.Op, From: f.From, Head: head.Last, First: head.First}
	if f.From < head.First {
		if !f.Retained {
			c.send(&wire.Error{Req: f.Req, Op: f.Op, Code: wire.CodeCompacted, Seq: head.First,
				Message: fmt.Sprintf("entries before %d were removed by retention", head.First)})
			return
		}
		// Start at the oldest held entry, after the commits kept below it.
		n, err := c.s.log.RetainedCount(f.Op, f.From, head.First)
		if err != nil {
			c.send(errorFrame(f.Req, f.Op, codeFor(err), err.Error()))
			return
		}
		s.retainedFrom, s.next = f.From, head.First
		confirm.From, confirm.Prev, confirm.LogAnchor = head.First, head.FirstPrev[:], head.FirstLog[:]
		confirm.Retained = uint64(n)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	old := c.subs[f.Op]
	if old == nil && len(c.subs) >= c.s.cfg.MaxSubscriptions {
		c.mu.Unlock()
		c.send(errorFrame(f.Req, f.Op, wire.CodeLimit, fmt.Sprintf("at most %d subscriptions per connection", c.s.cfg.MaxSubscriptions)))
		return
	}
	if old != nil {
		old.endLocked()
	}
	c.s.stats.subs.Add(1) // endLocked takes it back
	if c.subs == nil {
		c.subs = make(map[string]*subscription)
	}
	c.subs[f.Op] = s
	c.joinLocked(f.Op)
	confirm.Behind = c.s.log.Ready() != nil
	if b, err := wire.Encode(confirm); err != nil {
		c.log.Error("encode subscribed", "op", f.Op, "err", err)
	} else {
		c.enqueueLocked(ctlFrame(b, f.Op))
	}
	c.s.wg.Add(1)
	c.mu.Unlock()
	if old != nil {
		c.s.hub.remove(old)
	}
	c.s.hub.add(s)
	go s.pull()
}

func (c *conn) unsubscribe(op string) {
	c.mu.Lock()
	s := c.subs[op]
	if s != nil {
		s.endLocked()
		delete(c.subs, op)
	}
	c.mu.Unlock()
	if s != nil {
		c.s.hub.remove(s)
	}
}

// offer is called by the hub for each committed batch of the operation.
func (s *subscription) offer(b *announcement) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.ended || !s.live {
		return
	}
	end := b.Seq + uint64(len(b.Envelopes))
	if end <= s.next {
		return
	}
	if b.Seq > s.next {
		// Entries between next and this batch were announced before the
		// subscription went live; read them from the log.
		s.startPullLocked()
		return
	}
	frames, err := s.framesFrom(b)
	if err != nil {
		c.log.Error("encode deliver", "op", s.op, "err", err)
		return
	}
	// Take the frames that fit in the queue, in order.
	n, room := 0, c.s.cfg.QueueBytes-c.queued
	for n < len(frames) && len(frames[n].b) <= room {
		room -= len(frames[n].b)
		n++
	}
	if n > 0 {
		c.enqueueLocked(frames[:n]...)
		last := frames[n-1].last
		c.s.stats.delivered.Add(last + 1 - s.next)
		s.next = last + 1
	}
	if n < len(frames) {
		// The client is not keeping up: stop pushing and let the puller
		// read the rest from the log as the queue drains.
		c.s.stats.lagged.Add(1)
		s.startPullLocked()
	}
}

// framesFrom returns the deliver frames for b's entries from s.next on: the
// batch's shared frames when s takes all of it (the usual case), else its
// own encoding of the tail.
func (s *subscription) framesFrom(b *announcement) ([]outFrame, error) {
	if s.next == b.Seq {
		return b.wholeFrames(liveTarget(s.c.s.cfg.QueueBytes))
	}
	prev := b.Prev
	skip := s.next - b.Seq
	var chain wire.Chainer
	for _, e := range b.Envelopes[:skip] {
		prev = chain.Next(prev, e)
	}
	var kinds, classes []uint8
	if len(b.Kinds) > 0 {
		kinds = b.Kinds[skip:]
	}
	if len(b.Classes) > 0 {
		classes = b.Classes[skip:]
	}
	return deliverFrames(s.op, s.next, prev, b.Envelopes[skip:], kinds, classes, liveTarget(s.c.s.cfg.QueueBytes), false)
}

func (s *subscription) startPullLocked() {
	s.live = false
	if s.pulling || s.c.closed {
		return
	}
	s.pulling = true
	s.c.s.wg.Add(1)
	go s.pull()
}

// pull delivers entries from the log until the subscription has caught up
// with the log's head, then makes it live.
func (s *subscription) pull() {
	c := s.c
	defer c.s.wg.Done()
	for {
		c.mu.Lock()
		for !s.ended && c.queued >= c.s.cfg.QueueBytes/2 {
			c.room.Wait()
		}
		if s.ended {
			s.pulling = false
			c.mu.Unlock()
			return
		}
		from := s.next
		retainedFrom := s.retainedFrom
		c.mu.Unlock()

		if retainedFrom > 0 {
			if !s.sendRetained(retainedFrom, from) {
				return
			}
			continue
		}
		b, err := c.s.log.Read(s.op, from, c.s.cfg.ReadBatch, readBytes)
		if err != nil {
			s.abort(err)
			return
		}
		var frames []outFrame
		if len(b.Envelopes) > 0 {
			if frames, err = deliverFrames(s.op, from, b.Prev, b.Envelopes, b.Kinds, b.Classes, deliverTarget, true); err != nil {
				s.abort(err)
				return
			}
		}

		c.mu.Lock()
		switch {
		case s.ended:
			s.pulling = false
			c.mu.Unlock()
			return
		case len(frames) > 0:
			c.enqueueLocked(frames...)
			c.s.stats.delivered.Add(uint64(len(b.Envelopes)))
			s.next = from + uint64(len(b.Envelopes))
		case c.s.log.Head(s.op).Last < s.next:
			// Caught up. Announcements happen after the head moves, so
			// any entry committed after this check is offered to us
			// once we are live.
			s.live = true
			s.pulling = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// abort ends the subscription after a read error, telling the client why.
func (s *subscription) abort(err error) {
	c := s.c
	code := codeFor(err)
	frame := errorFrame(0, s.op, code, err.Error())
	if errors.Is(err, ErrCompacted) {
		frame.Seq = c.s.log.Head(s.op).First
	}
	c.mu.Lock()
	s.pulling = false
	mine := c.subs[s.op] == s
	if mine {
		s.endLocked()
		delete(c.subs, s.op)
	}
	c.mu.Unlock()
	if mine {
		c.s.hub.remove(s)
		c.send(frame)
	}
	c.log.Warn("subscription ended", "op", s.op, "err", err)
}

// sendRetained queues the next roster commits kept in [from, before) and
// reports whether the subscription goes on.
func (s *subscription) sendRetained(from, before uint64) bool {
	c := s.c
	rs, err := c.s.log.Retained(s.op, from, before, readBytes)
	if err != nil {
		s.abort(err)
		return false
	}
	frames := make([]outFrame, 0, len(rs))
	for _, r := range rs {
		b, err := wire.Encode(&wire.Retained{Op: s.op, Seq: r.Seq, Entry: r.Entry})
		if err != nil {
			s.abort(err)
			return false
		}
		frames = append(frames, ctlFrame(b, s.op))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.ended {
		s.pulling = false
		return false
	}
	s.retainedFrom = 0
	if len(rs) > 0 && rs[len(rs)-1].Seq+1 < before {
		s.retainedFrom = rs[len(rs)-1].Seq + 1
	}
	c.enqueueLocked(frames...)
	return true
}
