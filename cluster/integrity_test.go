package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writtenStore publishes entries through a node in dir, closes it and
// returns the FSM file's path.
func writtenStore(t *testing.T, dir string) string {
	t.Helper()
	n := openNode(t, dir)
	for i := 1; i <= 50; i++ {
		if _, err := n.Publish(context.Background(), Publish{Op: "op1", MsgID: msgID(t), Envelope: fmt.Appendf(nil, "entry-%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "fsm.db")
}

func editFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A store whose entry bytes, dedupe index or length were damaged is
// refused with ErrCorrupt, and an undamaged one opens.
func TestDamagedStoreIsRefused(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"intact": func(*testing.T, string) {},
		"entry byte flipped": func(t *testing.T, path string) {
			editFile(t, path, func(b []byte) []byte {
				i := bytes.Index(b, []byte("entry-025"))
				if i < 0 {
					t.Fatal("entry not found in the file")
				}
				b[i+8] ^= 1
				return b
			})
		},
		"truncated": func(t *testing.T, path string) {
			editFile(t, path, func(b []byte) []byte { return b[:bytes.Index(b, []byte("entry-025"))] })
		},
		"dedupe entry pointing elsewhere": func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				ids := tx.Bucket(bucketOps).Bucket([]byte("op1")).Bucket(bucketIDs)
				k, _ := ids.Cursor().First()
				return ids.Put(k, seqKey(7))
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := writtenStore(t, t.TempDir())
			damage(t, path)
			st, err := openStore(path)
			if name == "intact" {
				if err != nil {
					t.Fatal(err)
				}
				st.close()
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				if st != nil {
					st.close()
				}
				t.Fatalf("opened a damaged store: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// A node refuses to open on a truncated raft.db instead of letting bbolt
// panic.
func TestTruncatedRaftLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	writtenStore(t, dir)
	path := filepath.Join(dir, "raft", "raft.db")
	editFile(t, path, func(b []byte) []byte { return b[:bytes.Index(b, []byte("entry-025"))] })
	_, err := Open(Config{NodeID: "n1", DataDir: dir, RaftBind: freeAddr(t), Logger: quietLogger()})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opened on a truncated raft.db: %v", err)
	}
}
