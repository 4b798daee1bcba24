package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// timedLogStore times every append to the Raft log. On a leader the append
// comes before replication starts, and on a follower before it answers, so
// two of them lie in series on the path of every publish: with raft-boltdb
// each is a bbolt commit with two fdatasync, the largest part of a publish's
// latency (docs/performance.md).
type timedLogStore struct {
	raft.LogStore
	observe func(entries int, d time.Duration)
}

// StoreLog implements raft.LogStore.
func (s timedLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore.
func (s timedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := s.LogStore.StoreLogs(logs)
	s.observe(len(logs), time.Since(start))
	return err
}
