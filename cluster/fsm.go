package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// fsm applies Raft entries to the store and announces what it applied.
type fsm struct {
	st      *store
	log     *slog.Logger
	applied atomic.Uint64
	onFatal func(error)

	waitMu  sync.Mutex
	waiters []applyWaiter
	closed  bool

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
	f.releaseWaiters()
	if len(batches) > 0 {
		f.watchMu.RLock()
		for _, w := range f.watchers {
			w(batches)
		}
		f.watchMu.RUnlock()
	}
	return resp
}

// applyWaiter is a callback waiting for the FSM to reach a Raft index.
type applyWaiter struct {
	index uint64
	fn    func(error)
	timer *time.Timer
}

// afterWaitTimeout bounds how long a forwarded publish waits for this node
// to apply the entry the leader committed it in.
const afterWaitTimeout = 10 * time.Second

// afterApplied calls fn(nil) once the FSM has applied index, or fn with
// ErrUnknownOutcome if that takes longer than afterWaitTimeout (the entry
// is committed, but this node cannot show it yet) or ErrClosed on close.
func (f *fsm) afterApplied(index uint64, fn func(error)) {
	f.waitMu.Lock()
	if f.closed {
		f.waitMu.Unlock()
		fn(ErrClosed)
		return
	}
	if f.applied.Load() >= index {
		f.waitMu.Unlock()
		fn(nil)
		return
	}
	w := &applyWaiter{index: index, fn: fn}
	w.timer = time.AfterFunc(afterWaitTimeout, func() { f.expire(w) })
	f.waiters = append(f.waiters, *w)
	f.waitMu.Unlock()
}

func (f *fsm) expire(w *applyWaiter) {
	f.waitMu.Lock()
	for i := range f.waiters {
		if f.waiters[i].timer == w.timer {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.waitMu.Unlock()
			w.fn(fmt.Errorf("%w: committed at index %d, not yet applied on this node", ErrUnknownOutcome, w.index))
			return
		}
	}
	f.waitMu.Unlock()
}

func (f *fsm) releaseWaiters() {
	applied := f.applied.Load()
	f.waitMu.Lock()
	var ready []applyWaiter
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= applied {
			ready = append(ready, w)
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
	f.waitMu.Unlock()
	// Whoever removes a waiter from the list calls it: exactly once.
	for _, w := range ready {
		w.timer.Stop()
		w.fn(nil)
	}
}

func (f *fsm) closeWaiters() {
	f.waitMu.Lock()
	f.closed = true
	f.waitMu.Unlock()
	f.failWaiters(ErrClosed)
}

// failWaiters answers every waiter with err now.
func (f *fsm) failWaiters(err error) {
	f.waitMu.Lock()
	ws := f.waiters
	f.waiters = nil
	f.waitMu.Unlock()
	for _, w := range ws {
		w.timer.Stop()
		w.fn(err)
	}
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
	f.releaseWaiters()
	f.log.Info("fsm restored from snapshot", "applied_index", idx)
	return nil
}
