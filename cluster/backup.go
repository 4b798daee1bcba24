package cluster

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Snapshot asks raft to take a snapshot now (the FSM streams its bbolt file
// into it) and truncate the Raft log behind it.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of this node's FSM file (every
// operation's log, rosters and dedupe index) to w, from one read
// transaction, without stopping writes. It returns the bytes written and the
// Raft index the copy is current to.
func (n *Node) Backup(w io.Writer) (int64, uint64, error) {
	n.st.mu.RLock()
	db := n.st.db
	n.st.mu.RUnlock()
	if db == nil {
		return 0, 0, ErrClosed
	}
	var size int64
	var index uint64
	err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
			index = binary.BigEndian.Uint64(v)
		}
		var err error
		size, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return size, index, fmt.Errorf("cluster: backup: %w", err)
	}
	return size, index, nil
}

// PrepareRestore installs a backup made by Backup as the FSM file of a new,
// empty data directory, so that a node opened on it with Bootstrap starts a
// new cluster holding the backup's operations. The backup is checked (it
// must open as a store and its rosters must verify) before it is installed.
func PrepareRestore(dataDir string, backup io.Reader) error {
	if err := os.MkdirAll(filepath.Join(dataDir, "raft"), 0o700); err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	path := filepath.Join(dataDir, "fsm.db")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("cluster: restore: %s already exists; restore into an empty data directory", path)
	}
	has, err := hasRaftState(dataDir)
	if err != nil {
		return err
	}
	if has {
		return fmt.Errorf("cluster: restore: %s already holds Raft state; restore into an empty data directory", dataDir)
	}
	tmp := path + ".restore"
	if err := writeFileSync(tmp, backup); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: restore: %w", err)
	}
	st, err := openStore(tmp)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: restore: the backup is not a valid store: %w", err)
	}
	// The new cluster's Raft log starts again at index 1: forget the old
	// cluster's applied index, or the FSM would skip the new entries.
	err = st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyApplied) })
	if cerr := st.close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster: restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	return syncDir(dataDir)
}

func hasRaftState(dataDir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db"))
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}

// FirstLogIndex returns the oldest index in the Raft log (it grows as
// snapshots truncate the log).
func (n *Node) FirstLogIndex() (uint64, error) {
	return n.logs.FirstIndex()
}
