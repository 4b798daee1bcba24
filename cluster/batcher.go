package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// pending is one publish waiting for its Raft entry to commit. done gets
// the Raft index of the entry that decided its outcome. local publishes
// came from another node's forwarder: they are applied here or refused,
// never forwarded again.
type pending struct {
	pub   Publish
	local bool
	done  func(Result, uint64, error)
}

// inflight is one Raft entry on its way to commit.
type inflight struct {
	fut   raft.ApplyFuture
	pubs  []*pending
	start time.Time
}

// batchLoop packs queued publishes into Raft entries (group commit). It does
// not wait for an entry to commit before building the next one: up to
// maxInflight entries are pipelined, and raft's BatchApplyCh gives many of
// them one disk write.
func (n *Node) batchLoop() {
	defer close(n.inflight)
	for {
		var first *pending
		select {
		case first = <-n.queue:
		case <-n.stop:
			n.failQueued()
			return
		}
		batch := []*pending{first}
		size := encodedSize(&first.pub)
	fill:
		for len(batch) < n.cfg.MaxBatchCount && size < n.cfg.MaxBatchBytes {
			select {
			case p := <-n.queue:
				batch = append(batch, p)
				size += encodedSize(&p.pub)
			default:
				break fill
			}
		}
		if n.raft.State() != raft.Leader {
			n.forward(batch)
			continue
		}
		n.metrics.observeBatch(len(batch))
		now := time.Now()
		cmd := encodePublishes(now.UnixMilli(), batch)
		fut := n.raft.Apply(cmd, n.cfg.ApplyTimeout)
		select {
		case n.inflight <- inflight{fut: fut, pubs: batch, start: now}:
		case <-n.stop:
			// The entry may still commit; its publishers retry with the
			// same message ids and the dedupe index answers them.
			failAll(batch, ErrUnknownOutcome)
			n.failQueued()
			return
		}
	}
}

// forward sends a batch built on a follower to the leader. Publishes that
// were themselves forwarded here are refused instead: the sender retries.
func (n *Node) forward(batch []*pending) {
	addr, _ := n.raft.LeaderWithID()
	out := batch[:0:0]
	for _, p := range batch {
		if p.local || addr == "" {
			p.done(Result{}, 0, ErrNotLeader)
			continue
		}
		out = append(out, p)
	}
	if len(out) > 0 {
		n.fwd.send(string(addr), out)
	}
}

// waitLoop answers publishers as their entries commit, in Raft order.
func (n *Node) waitLoop() {
	defer close(n.waitDone)
	for in := range n.inflight {
		err := in.fut.Error()
		if err != nil {
			failAll(in.pubs, applyError(err))
			continue
		}
		index := in.fut.Index()
		if m := n.cfg.Metrics; m != nil {
			m.ObserveCommit(len(in.pubs), time.Since(in.start))
		}
		out, ok := in.fut.Response().(*applyOut)
		switch {
		case !ok || out == nil:
			failAll(in.pubs, fmt.Errorf("%w: no response from fsm", ErrUnknownOutcome))
		case out.err != nil:
			failAll(in.pubs, out.err)
		case len(out.results) != len(in.pubs):
			failAll(in.pubs, fmt.Errorf("%w: fsm answered %d of %d", ErrUnknownOutcome, len(out.results), len(in.pubs)))
		default:
			for i, p := range in.pubs {
				if out.errs != nil && out.errs[i] != nil {
					p.done(Result{}, index, out.errs[i])
					continue
				}
				p.done(out.results[i], index, nil)
			}
		}
	}
}

// applyError converts raft's Apply errors. Only ErrNotLeader (the entry was
// never appended) says the write did not happen; everything else may still
// commit.
func applyError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
}

func (n *Node) failQueued() {
	for {
		select {
		case p := <-n.queue:
			p.done(Result{}, 0, ErrClosed)
		default:
			return
		}
	}
}

func failAll(ps []*pending, err error) {
	for _, p := range ps {
		p.done(Result{}, 0, err)
	}
}
