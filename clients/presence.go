package clients

import (
	"context"
	"errors"
	"fmt"
	"time"

	"liaison/relay/wire"
)

// PresenceEntry is one connection (a device) of an operation's member, on
// some node of the cluster: connected now, or seen recently.
type PresenceEntry struct {
	// Member is the connection's authenticated identity key; zero for an
	// anonymous connection.
	Member [32]byte
	// Node and Conn name the node and the connection on it.
	Node, Conn string
	// Connected is true while the connection is open (as of the node's
	// last report).
	Connected bool
	// Since is when the connection subscribed to the operation; LastSeen
	// when the node last heard from it.
	Since, LastSeen time.Time
	// Delivered is the highest sequence of the operation the node wrote
	// to this connection (0: none).
	Delivered uint64
}

// Presence is an operation's presence and delivery table, as the answering
// node merged it from every node of the cluster.
type Presence struct {
	Op      string
	Entries []PresenceEntry
	// Truncated: the table had more entries than one answer carries.
	Truncated bool
	// Time is the answering node's clock.
	Time time.Time
}

// Delivered returns, per member, the highest sequence written to any of
// its devices.
func (p *Presence) Delivered() map[[32]byte]uint64 {
	out := make(map[[32]byte]uint64)
	for _, e := range p.Entries {
		if e.Member != ([32]byte{}) && e.Delivered > out[e.Member] {
			out[e.Member] = e.Delivered
		}
	}
	return out
}

// Presence asks the relay who is in operation op: every connection that
// subscribed to it on any node of the cluster, connected now or recently,
// with last-seen times and the highest sequence each was sent. The table is
// ephemeral (gossiped between nodes, not replicated through Raft), so a
// node that just started or lost its peers answers with what it knows. If
// the connection drops before the answer, the request is sent again on the
// next connection, up to maxPresenceAttempts times in all (a relay that does
// not know the request closes the connection).
func (c *Client) Presence(ctx context.Context, op string) (*Presence, error) {
	if !wire.ValidOp(op) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidOp, op)
	}
	for attempt := 1; ; attempt++ {
		if attempt > maxPresenceAttempts {
			return nil, fmt.Errorf("clients: presence of %s: %w", op, ErrConnectionLost)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		cn := c.cur
		var req uint64
		var ch chan presenceAnswer
		if cn != nil {
			req = c.nextReq()
			ch = make(chan presenceAnswer, 1)
			c.presReqs[req] = ch
		}
		c.mu.Unlock()
		if cn == nil {
			// Reconnecting: wait a little and look again.
			t := time.NewTimer(c.opts.ReconnectMin)
			select {
			case <-t.C:
				attempt-- // waiting for a connection is not an attempt
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-c.closing:
				t.Stop()
				return nil, ErrClosed
			}
		}
		forget := func() {
			c.mu.Lock()
			delete(c.presReqs, req)
			c.mu.Unlock()
		}
		if err := cn.writeFrame(&wire.PresenceReq{Req: req, Op: op}); err != nil {
			forget()
			select {
			case <-cn.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case a := <-ch:
			if a.err != nil {
				return nil, fmt.Errorf("clients: presence of %s: %w", op, a.err)
			}
			return a.p, nil
		case <-cn.done:
			forget()
		case <-ctx.Done():
			forget()
			return nil, ctx.Err()
		case <-c.closing:
			forget()
			return nil, ErrClosed
		}
	}
}

// maxPresenceAttempts bounds the connections a presence request is sent on.
const maxPresenceAttempts = 3

// ErrConnectionLost is returned by a request whose connections kept
// dropping before it was answered.
var ErrConnectionLost = errors.New("clients: connection lost before the answer")

type presenceAnswer struct {
	p   *Presence
	err error
}

func (c *Client) handlePresence(f *wire.Presence) {
	c.mu.Lock()
	ch, ok := c.presReqs[f.Req]
	delete(c.presReqs, f.Req)
	c.mu.Unlock()
	if !ok {
		return
	}
	p := &Presence{Op: f.Op, Truncated: f.Truncated, Time: time.UnixMilli(f.Time)}
	for _, e := range f.Entries {
		pe := PresenceEntry{Node: e.Node, Conn: e.Conn, Connected: e.Connected, Since: time.UnixMilli(e.Since), LastSeen: time.UnixMilli(e.LastSeen), Delivered: e.Delivered}
		copy(pe.Member[:], e.Member)
		p.Entries = append(p.Entries, pe)
	}
	ch <- presenceAnswer{p: p}
}

// presenceFailed delivers a relay error to a pending presence request; it
// reports whether req was one.
func (c *Client) presenceFailed(e *wire.Error) bool {
	c.mu.Lock()
	ch, ok := c.presReqs[e.Req]
	delete(c.presReqs, e.Req)
	c.mu.Unlock()
	if ok {
		ch <- presenceAnswer{err: e}
	}
	return ok
}
