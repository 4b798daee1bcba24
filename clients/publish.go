package clients

import (
	"context"
	"fmt"
	"time"

	"liaison/relay/wire"
)

// maxUnavailable is how many consecutive "unavailable" answers make the
// client leave a relay for the next one in its list.
const maxUnavailable = 3

// PublishResult is the outcome of an acknowledged publish.
type PublishResult struct {
	// Seq is the entry's sequence number in the operation's log.
	Seq uint64
	// Dup is true when the msgid had been committed before: Seq is then the
	// sequence of that earlier publish, and nothing new was stored.
	Dup bool
	// MsgID is the message id the publish carried.
	MsgID MsgID
}

// PublishOption modifies one Publish call.
type PublishOption func(*publishConfig)

type publishConfig struct {
	class wire.Class
	kind  wire.Kind
	id    MsgID
	hasID bool
}

// WithClass sets the coarse priority class the relay may see (default
// wire.ClassRoutine).
func WithClass(class wire.Class) PublishOption {
	return func(p *publishConfig) { p.class = class }
}

// WithKind sets the kind of the entry (default wire.KindMessage). Roster
// commits are published with wire.KindCommit; the relay checks them against
// the operation's roster and answers wire.CodeStaleHead when another commit
// got in first.
func WithKind(kind wire.Kind) PublishOption {
	return func(p *publishConfig) { p.kind = kind }
}

// WithMsgID makes Publish use id instead of a fresh one. Callers that persist
// an outbox use it to re-send a message exactly once across process
// restarts: a re-send of a committed id is acknowledged with Dup and the
// original sequence.
func WithMsgID(id MsgID) PublishOption {
	return func(p *publishConfig) { p.id, p.hasID = id, true }
}

// pendingPub is a publish awaiting its ack. Fields other than the immutable
// ones are protected by Client.mu.
type pendingPub struct {
	req   uint64
	op    string
	id    MsgID
	frame []byte // encoded publish, re-sent unchanged

	sentOn *conn         // connection the frame was last written to
	retry  chan struct{} // signalled (non-blocking, cap 1) on a retryable error
	done   chan struct{} // closed when res/err are final
	res    PublishResult
	err    error
}

// Publish appends envelope to the log of operation op and returns the
// sequence the relay acknowledged. Many Publish calls may run concurrently;
// they are pipelined on the client's connection.
//
// Publish returns only on an ack, on a non-retryable relay error (which the
// returned error wraps as a *wire.Error), or when ctx ends or the client
// closes: the error then wraps ErrUnknownOutcome (and ctx.Err() or
// ErrClosed), because the entry may still have committed. Retryable relay
// errors and connection loss are handled inside: the publish is re-sent with
// the same msgid until it is acknowledged.
func (c *Client) Publish(ctx context.Context, op string, envelope []byte, opts ...PublishOption) (PublishResult, error) {
	if !wire.ValidOp(op) {
		return PublishResult{}, fmt.Errorf("%w: %q", ErrInvalidOp, op)
	}
	var cfg publishConfig
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.hasID {
		cfg.id = NewMsgID()
	}
	req := c.nextReq()
	frame, err := wire.Encode(&wire.Publish{Req: req, Op: op, MsgID: cfg.id[:], Class: cfg.class, Kind: cfg.kind, Envelope: envelope})
	if err != nil {
		return PublishResult{}, fmt.Errorf("clients: publish to %s: %w", op, err)
	}

	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return PublishResult{}, fmt.Errorf("clients: publish to %s (msgid %s): %w: %w", op, cfg.id, ErrUnknownOutcome, ctx.Err())
	case <-c.closing:
		return PublishResult{}, fmt.Errorf("clients: publish to %s: %w", op, ErrClosed)
	}
	defer func() { <-c.inflight }()

	p := &pendingPub{req: req, op: op, id: cfg.id, frame: frame, retry: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return PublishResult{}, fmt.Errorf("clients: publish to %s: %w", op, ErrClosed)
	}
	c.pubs[req] = p
	cn := c.cur
	if cn != nil {
		p.sentOn = cn
	}
	c.mu.Unlock()
	if cn != nil {
		cn.write(frame) // on failure the supervisor reconnects and re-sends
	}

	for attempt := 0; ; attempt++ {
		select {
		case <-p.done:
			return p.res, p.err
		case <-p.retry:
			t := time.NewTimer(backoff(c.opts.ReconnectMin, c.opts.ReconnectMax, attempt))
			select {
			case <-t.C:
				c.resend(p)
			case <-p.done:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
			case <-c.closing:
				t.Stop()
			}
		case <-ctx.Done():
			if r, err, ok := c.abandon(p); ok {
				return r, err
			}
			return PublishResult{}, fmt.Errorf("clients: publish to %s (msgid %s): %w: %w", op, cfg.id, ErrUnknownOutcome, ctx.Err())
		case <-c.closing:
			if r, err, ok := c.abandon(p); ok {
				return r, err
			}
			return PublishResult{}, fmt.Errorf("clients: publish to %s (msgid %s): %w: %w", op, cfg.id, ErrUnknownOutcome, ErrClosed)
		}
	}
}

// abandon stops re-sending p. If p was completed meanwhile it returns its
// result and ok.
func (c *Client) abandon(p *pendingPub) (PublishResult, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, pending := c.pubs[p.req]; pending {
		delete(c.pubs, p.req)
		return PublishResult{}, nil, false
	}
	<-p.done // completed under c.mu, so already closed
	return p.res, p.err, true
}

// resend writes p on the live connection unless it is already in flight
// there (or there is none: the next connection will send it).
func (c *Client) resend(p *pendingPub) {
	c.mu.Lock()
	_, pending := c.pubs[p.req]
	cn := c.cur
	if !pending || cn == nil || p.sentOn == cn {
		c.mu.Unlock()
		return
	}
	p.sentOn = cn
	c.mu.Unlock()
	cn.write(p.frame)
}

func (c *Client) handleAck(cn *conn, a *wire.Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pubs[a.Req]
	if !ok || p.op != a.Op {
		c.log.Debug("ack for unknown request", "node", cn.node, "req", a.Req, "op", a.Op)
		return
	}
	delete(c.pubs, a.Req)
	cn.unavailable = 0
	p.res = PublishResult{Seq: a.Seq, Dup: a.Dup, MsgID: p.id}
	close(p.done)
}

// pubFailed handles an error frame answering p.
func (c *Client) pubFailed(cn *conn, p *pendingPub, e *wire.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pubs[p.req]; !ok {
		return
	}
	if e.Code.Retryable() {
		c.log.Debug("publish will be retried", "node", cn.node, "op", p.op, "msgid", p.id, "code", e.Code.String())
		if e.Code == wire.CodeUnavailable {
			// A node that keeps saying it cannot serve (no leader, removed
			// from the cluster, cut off) is left for the next relay.
			if cn.unavailable++; cn.unavailable >= maxUnavailable {
				c.log.Info("relay keeps answering unavailable; moving to another", "node", cn.node)
				cn.close()
			}
		}
		if p.sentOn == cn {
			p.sentOn = nil
		}
		select {
		case p.retry <- struct{}{}:
		default:
		}
		return
	}
	delete(c.pubs, p.req)
	p.err = fmt.Errorf("clients: publish to %s (msgid %s): %w", p.op, p.id, e)
	close(p.done)
}
