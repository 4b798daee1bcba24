package cluster

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Every bbolt file a node opens (the FSM's fsm.db, raft's raft.db, and the
// FSM file again after a snapshot restore) commits with fsync. Jepsen found
// NATS JetStream losing acknowledged writes because it acknowledged before
// fsync; this test fails if any store of ours is opened with fsync off.
func TestStoresAreOpenedWithFsync(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	check := func(name string, db *bolt.DB) {
		t.Helper()
		if db == nil {
			t.Fatalf("%s is not open", name)
		}
		if db.NoSync || db.NoGrowSync {
			t.Errorf("%s is open with NoSync=%v NoGrowSync=%v: acknowledged writes could be lost on power failure", name, db.NoSync, db.NoGrowSync)
		}
	}
	check("fsm.db", n.st.db)
	check("raft.db", raftBolt(t, n.logs))

	// After a restore the FSM reopens its file: still with fsync.
	snap, err := n.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf sinkBuffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := n.fsm.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	check("fsm.db after restore", n.st.db)
}

// raftBolt returns the bbolt handle inside raft-boltdb's store, which the
// library does not expose.
func raftBolt(t *testing.T, s *raftboltdb.BoltStore) *bolt.DB {
	t.Helper()
	v := reflect.ValueOf(s).Elem().FieldByName("conn")
	if !v.IsValid() || v.Type() != reflect.TypeOf((*bolt.DB)(nil)) {
		t.Fatal("raft-boltdb's BoltStore no longer keeps its *bbolt.DB in field conn; update this test")
	}
	return (*bolt.DB)(v.UnsafePointer())
}

// sinkBuffer is an in-memory raft.SnapshotSink.
type sinkBuffer struct{ bytes.Buffer }

func (s *sinkBuffer) ID() string    { return "test" }
func (s *sinkBuffer) Cancel() error { return nil }
func (s *sinkBuffer) Close() error  { return nil }
