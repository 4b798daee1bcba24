package cluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Every bbolt file a node opens commits with fsync, except the FSM's own
// file, which is a copy of the Raft log: it may skip fsync only while its
// marker says so for the current boot (fsmfile.go), so that a node rebuilds
// it after the system went down. Jepsen found NATS JetStream losing
// acknowledged writes because it acknowledged before fsync; this test fails
// if the Raft log is ever opened with fsync off, or the FSM's file without
// its marker.
func TestStoresAreOpenedWithFsync(t *testing.T) {
	for _, fsmSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("FSMSync=%v", fsmSync), func(t *testing.T) {
			dir := t.TempDir()
			n := openNode(t, dir, func(c *Config) {
				c.FSMSync = fsmSync
				c.bootID = func() (string, error) { return "boot-a", nil }
			})
			defer n.Close()
			check := func(name string, db *bolt.DB, wantSync bool) {
				t.Helper()
				if db == nil {
					t.Fatalf("%s is not open", name)
				}
				if db.NoGrowSync || db.NoSync == wantSync {
					t.Errorf("%s is open with NoSync=%v NoGrowSync=%v, want fsync %v", name, db.NoSync, db.NoGrowSync, wantSync)
				}
			}
			checkMarker := func() {
				t.Helper()
				b, err := os.ReadFile(filepath.Join(dir, fsmMarkerName))
				switch {
				case fsmSync && !os.IsNotExist(err):
					t.Errorf("fsm file written with fsync, but a marker is there: %q, %v", b, err)
				case !fsmSync && string(b) != "dirty boot-a\n":
					t.Errorf("fsm file written without fsync, marker %q (%v), want dirty boot-a", b, err)
				}
			}
			check("fsm.db", n.st.db, fsmSync)
			check("raft.db", raftBolt(t, n.logs), true)
			checkMarker()

			// After a restore the FSM reopens its file the same way.
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
			check("fsm.db after restore", n.st.db, fsmSync)
			checkMarker()
		})
	}
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
