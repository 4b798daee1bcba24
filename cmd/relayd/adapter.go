package main

import (
	"errors"
	"fmt"

	"liaison/cluster"
	"liaison/crypto"
	"liaison/relay"
)

// clusterLog adapts a cluster.Node to relay.Log, converting types and
// errors where they cross from one package to the other.
type clusterLog struct{ n *cluster.Node }

var _ relay.Log = clusterLog{}

func (l clusterLog) Submit(p relay.Publish, done func(relay.Result, error)) {
	l.n.Submit(cluster.Publish(p), func(r cluster.Result, err error) {
		done(relay.Result(r), relayError(err))
	})
}

func (l clusterLog) Read(op string, from uint64, maxCount, maxBytes int) (relay.Batch, error) {
	b, err := l.n.Read(op, from, maxCount, maxBytes)
	return relay.Batch(b), relayError(err)
}

func (l clusterLog) Head(op string) relay.Head { return relay.Head(l.n.Head(op)) }

func (l clusterLog) Retained(op string, from, before uint64, maxBytes int) ([]relay.RetainedEntry, error) {
	rs, err := l.n.Retained(op, from, before, maxBytes)
	if err != nil {
		return nil, relayError(err)
	}
	out := make([]relay.RetainedEntry, len(rs))
	for i, r := range rs {
		out[i] = relay.RetainedEntry(r)
	}
	return out, nil
}

func (l clusterLog) RetainedCount(op string, from, before uint64) (int, error) {
	n, err := l.n.RetainedCount(op, from, before)
	return n, relayError(err)
}

func (l clusterLog) Watch(fn func([]relay.Batch)) func() {
	return l.n.Watch(func(bs []cluster.Batch) {
		out := make([]relay.Batch, len(bs))
		for i := range bs {
			out[i] = relay.Batch(bs[i])
		}
		fn(out)
	})
}

func (l clusterLog) Ready() error { return l.n.Ready() }

func (l clusterLog) Roster(op string) *crypto.Roster { return l.n.Roster(op) }

// relayError converts cluster errors into the relay's.
func relayError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrClosed):
		return fmt.Errorf("%w: %v", relay.ErrUnavailable, err)
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return fmt.Errorf("%w: %v", relay.ErrUnknownOutcome, err)
	case errors.Is(err, cluster.ErrCompacted):
		return fmt.Errorf("%w: %v", relay.ErrCompacted, err)
	case errors.Is(err, cluster.ErrInvalid):
		return fmt.Errorf("%w: %v", relay.ErrInvalid, err)
	case errors.Is(err, cluster.ErrStaleHead):
		return fmt.Errorf("%w: %v", relay.ErrStaleHead, err)
	case errors.Is(err, cluster.ErrRejected):
		return fmt.Errorf("%w: %v", relay.ErrRejected, err)
	}
	return err
}
