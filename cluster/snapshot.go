package cluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// boltSnapshot streams a bbolt read transaction: the snapshot is the FSM's
// file as of that transaction, never a copy of the state in memory.
type boltSnapshot struct {
	tx *bolt.Tx
}

var _ raft.FSMSnapshot = (*boltSnapshot)(nil)

func (s *store) snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &boltSnapshot{tx: tx}, nil
}

// Persist implements raft.FSMSnapshot.
func (b *boltSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := b.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("snapshot persist: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (b *boltSnapshot) Release() { _ = b.tx.Rollback() }

// restore writes r to a temporary file next to the store, checks that it
// opens as a store, then swaps it in.
func (s *store) restore(r io.Reader) error {
	tmp := s.path + ".restore"
	if err := writeFileSync(tmp, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	check, err := openStore(tmp)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: snapshot is not a valid store: %w", err)
	}
	if err := check.close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("restore: close: %w", err)
		}
		s.db = nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, err := openBolt(s.path, s.noSync())
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	s.db = db
	return s.loadLocked()
}

func writeFileSync(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
