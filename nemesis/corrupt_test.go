package nemesis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"liaison/clients"
)

// copyDir copies a data directory (regular files only).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.RemoveAll(to); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// damage is one way to spoil a node's data file.
type damage struct {
	name  string
	file  string // relative to the data dir
	apply func(t *testing.T, path string)
}

// flipInValue flips one byte inside a published value stored in the file:
// bbolt keeps no checksum of its data pages, so only our own checks can see
// it.
func flipInValue(needle string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte(needle))
		if i < 0 {
			t.Fatalf("%s does not hold %q", path, needle)
		}
		b[i+len(needle)-1] ^= 0x01
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// truncateAt cuts the file short in the middle of a stored value, so the
// cut removes pages the file's last commit uses.
func truncateAt(needle string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.LastIndex(b, []byte(needle))
		if i < 0 {
			t.Fatalf("%s does not hold %q", path, needle)
		}
		if err := os.Truncate(path, int64(i+3)); err != nil {
			t.Fatal(err)
		}
	}
}

// A node whose fsm.db or raft.db was corrupted or truncated while it was
// down either refuses to start with a message naming the problem, or
// starts and serves exactly what the other nodes serve: it never serves
// wrong data. Each damage is tested on a real relayd process.
func TestDamagedDataFileNeverServesWrongData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := StartCluster(ctx, t.TempDir(), 3, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops := []string{"damage"}
	cl, err := clients.Dial(ctx, []string{c.Nodes[0].Listen}, clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const count = 200
	for i := 1; i <= count; i++ {
		v := fmt.Sprintf("value-%04d-%s", i, strings.Repeat("x", 64))
		if _, err := cl.Publish(ctx, ops[0], []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := readLogs(ctx, c.Nodes[0], ops)
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Nodes[2]
	victim.Kill()
	good := filepath.Join(t.TempDir(), "good")
	copyDir(t, victim.DataDir, good)

	raftDB := filepath.Join("raft", "raft.db")
	damages := []damage{
		{"fsm.db value flipped", "fsm.db", flipInValue("value-0150-")},
		{"fsm.db truncated", "fsm.db", truncateAt("value-0150-")},
		{"raft.db value flipped", raftDB, flipInValue("value-0199-")},
		{"raft.db truncated", raftDB, truncateAt("value-0150-")},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			copyDir(t, good, victim.DataDir)
			d.apply(t, filepath.Join(victim.DataDir, d.file))
			if err := victim.Start(""); err != nil {
				t.Fatal(err)
			}
			defer victim.Kill()
			exited := victim.Exited()
			wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
			defer wcancel()
			_ = waitFor(wctx, func() bool {
				select {
				case <-exited:
					return true
				default:
				}
				return victim.Ready(wctx)
			})
			select {
			case <-exited:
				out := victim.Log()
				t.Logf("refused to start:\n%s", lastLines(out, 3))
				if !strings.Contains(out, "corrupt") && !strings.Contains(out, filepath.Base(d.file)) {
					t.Fatalf("the node stopped without naming the problem:\n%s", out)
				}
				return
			default:
			}
			if wctx.Err() != nil {
				t.Fatalf("neither refused nor ready within a minute:\n%s", victim.Log())
			}
			got, err := readLogs(ctx, victim, ops)
			if err != nil {
				t.Fatalf("started, but reading from it failed: %v", err)
			}
			if !slices.Equal(got[ops[0]], want[ops[0]]) {
				t.Fatalf("started and serves a log of %d entries that differs from the others' (%d entries)", len(got[ops[0]]), len(want[ops[0]]))
			}
			t.Logf("started and serves the same %d entries as the others", len(got[ops[0]]))
		})
	}
	// What a power loss can leave after writes without fsync: the marker
	// names the boot the node last ran in (here rewritten to another one,
	// as after a reboot) and fsm.db lacks pages. The node must not refuse
	// or serve it: it rebuilds it from its Raft snapshot and log.
	t.Run("power loss", func(t *testing.T) {
		copyDir(t, good, victim.DataDir)
		marker := filepath.Join(victim.DataDir, "fsm.boot")
		b, err := os.ReadFile(marker)
		if err != nil || !strings.HasPrefix(string(b), "dirty ") {
			t.Fatalf("a killed node's marker: %q, %v; want dirty <boot id>", b, err)
		}
		if err := os.WriteFile(marker, []byte("dirty 00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		truncateAt("value-0150-")(t, filepath.Join(victim.DataDir, "fsm.db"))
		if err := victim.Start(""); err != nil {
			t.Fatal(err)
		}
		defer victim.Kill()
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		defer wcancel()
		if err := waitFor(wctx, func() bool { return victim.Ready(wctx) }); err != nil {
			t.Fatalf("not ready within a minute: %v\n%s", err, victim.Log())
		}
		if !strings.Contains(victim.Log(), "rebuilding it from the Raft snapshot and log") {
			t.Errorf("no rebuild in the log:\n%s", victim.Log())
		}
		got, err := readLogs(ctx, victim, ops)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[ops[0]], want[ops[0]]) {
			t.Fatalf("serves a log of %d entries that differs from the others' (%d entries)", len(got[ops[0]]), len(want[ops[0]]))
		}
	})
	// Undamaged, it rejoins.
	copyDir(t, good, victim.DataDir)
	if err := victim.Start(""); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
