package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm applies Raft entries to the store and announces what it applied.
type fsm struct {
	st      *store
	log     *slog.Logger
	applied atomic.Uint64
	onFatal func(error)

	watchMu  sync.RWMutex
	watchers map[int]func([]Batch)
	nextW    int
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(st *store, log *slog.Logger, onFatal func(error)) (*fsm, error) {
	f := &fsm{st: st, log: log, onFatal: onFatal, watchers: make(map[int]func([]Batch))}
	idx, err := st.appliedIndex()
	if err != nil {
		return nil, err
	}
	f.applied.Store(idx)
	return f, nil
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: the whole batch is one bbolt
// transaction. Each response is an *applyOut.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	entries := make([]entryIn, 0, len(logs))
	pos := make([]int, 0, len(logs))
	var last uint64
	for i, l := range logs {
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := decodeCommand(l.Data)
		if err != nil {
			f.log.Error("skipping undecodable raft entry", "index", l.Index, "err", err)
		}
		entries = append(entries, entryIn{index: l.Index, cmd: cmd, err: err})
		pos = append(pos, i)
	}
	if len(entries) == 0 {
		return resp
	}
	outs, batches, err := f.st.apply(entries)
	if err != nil {
		// The store could not commit: this node's state is now behind what
		// raft believes is applied. Stop the node; a restart replays the
		// entries from the last snapshot and the store skips what it holds.
		f.log.Error("fsm apply failed; stopping node", "err", err)
		for _, p := range pos {
			resp[p] = &applyOut{err: fmt.Errorf("%w: %v", ErrUnknownOutcome, err)}
		}
		if f.onFatal != nil {
			f.onFatal(err)
		}
		return resp
	}
	for i, p := range pos {
		o := outs[i]
		resp[p] = &o
	}
	f.applied.Store(max(last, f.applied.Load()))
	if len(batches) > 0 {
		f.watchMu.RLock()
		for _, w := range f.watchers {
			w(batches)
		}
		f.watchMu.RUnlock()
	}
	return resp
}

func (f *fsm) watch(fn func([]Batch)) func() {
	f.watchMu.Lock()
	defer f.watchMu.Unlock()
	id := f.nextW
	f.nextW++
	f.watchers[id] = fn
	return func() {
		f.watchMu.Lock()
		delete(f.watchers, id)
		f.watchMu.Unlock()
	}
}

// Snapshot implements raft.FSM. It opens a read transaction and returns at
// once; Persist streams the file from that transaction.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return f.st.snapshot()
}

// Restore implements raft.FSM: it replaces the store's file with the
// snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.st.restore(rc); err != nil {
		return err
	}
	idx, err := f.st.appliedIndex()
	if err != nil {
		return err
	}
	f.applied.Store(idx)
	f.log.Info("fsm restored from snapshot", "applied_index", idx)
	return nil
}
