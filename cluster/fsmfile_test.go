package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMarkerTrusts(t *testing.T) {
	noBoot := errors.New("no boot id")
	cases := []struct {
		marker  []byte
		boot    string
		bootErr error
		want    bool
	}{
		{nil, "a", nil, true},               // always written with fsync
		{nil, "", noBoot, true},             // the same, on a system without boot ids
		{[]byte("clean\n"), "b", nil, true}, // fsynced and closed
		{[]byte("dirty a\n"), "a", nil, true},
		{[]byte("dirty a\n"), "b", nil, false},     // the system went down
		{[]byte("dirty a\n"), "", noBoot, false},   // cannot tell
		{[]byte(""), "a", nil, false},              // damaged marker
		{[]byte("dirty\n"), "a", nil, false},       // no id
		{[]byte("sometimes a\n"), "a", nil, false}, // unknown word
	}
	for _, c := range cases {
		got, why := markerTrusts(c.marker, c.boot, c.bootErr)
		if got != c.want {
			t.Errorf("marker %q boot %q (%v): trusted %v (%s), want %v", c.marker, c.boot, c.bootErr, got, why, c.want)
		}
		if !got && why == "" {
			t.Errorf("marker %q: distrusted without a reason", c.marker)
		}
	}
}

// logBuffer is a slog handler's destination that tests can read while the
// node writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// crashState publishes 300 entries on a node in dir (boot "boot-a", a
// snapshot after the first 200), closes it and leaves its FSM file as the
// system going down could have: marker dirty for boot-a, and the file
// itself damaged (cut in half). It returns the head and the results.
func crashState(t *testing.T, dir string) (Head, []Result, []Publish) {
	t.Helper()
	n := openNode(t, dir, func(c *Config) { c.bootID = func() (string, error) { return "boot-a", nil } })
	var results []Result
	var pubs []Publish
	for i := 0; i < 300; i++ {
		p := Publish{Op: "crash", MsgID: msgID(t), Envelope: bytes.Repeat([]byte{byte(i)}, 100+i)}
		r, err := n.Publish(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		results, pubs = append(results, r), append(pubs, p)
		if i == 199 {
			if err := n.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := n.Head("crash")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fsmMarkerName), []byte("dirty boot-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fsmPath := filepath.Join(dir, "fsm.db")
	fi, err := os.Stat(fsmPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fsmPath, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	return head, results, pubs
}

// After the system went down, a node does not trust an FSM file it wrote
// without fsync: it rebuilds it from the newest snapshot and the Raft log
// after it, and every acknowledged entry is back, with its chain and its
// message id.
func TestFSMRebuiltAfterSystemCrash(t *testing.T) {
	dir := t.TempDir()
	head, results, pubs := crashState(t, dir)

	var logs logBuffer
	n := openNode(t, dir, func(c *Config) {
		c.bootID = func() (string, error) { return "boot-b", nil }
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	defer n.Close()
	if !strings.Contains(logs.String(), "rebuilding it from the Raft snapshot and log") {
		t.Errorf("no rebuild was logged:\n%s", logs.String())
	}
	waitFor(t, func() bool { return n.Head("crash").Last >= head.Last })
	if got := n.Head("crash"); got != head {
		t.Fatalf("head after rebuild %+v, want %+v", got, head)
	}
	var seq uint64 = 1
	for seq <= head.Last {
		b, err := n.Read("crash", seq, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range b.Envelopes {
			if want := pubs[b.Seq-1+uint64(i)].Envelope; !bytes.Equal(e, want) {
				t.Fatalf("entry %d differs after rebuild", b.Seq+uint64(i))
			}
		}
		seq = b.Seq + uint64(len(b.Envelopes))
	}
	// The dedupe index came back too: re-sending answers with the original
	// sequence.
	for _, i := range []int{0, 150, 299} {
		r, err := n.Publish(context.Background(), pubs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !r.Dup || r.Seq != results[i].Seq {
			t.Errorf("re-sent publish %d: %+v, want dup of seq %d", i, r, results[i].Seq)
		}
	}
	marker, err := os.ReadFile(filepath.Join(dir, fsmMarkerName))
	if err != nil || string(marker) != "dirty boot-b\n" {
		t.Errorf("marker after rebuild %q (%v), want dirty boot-b", marker, err)
	}
}

// A process that died on the same boot left its writes in the kernel: the
// file is used as it is. A clean close is trusted on any later boot.
func TestFSMTrustedWithoutSystemCrash(t *testing.T) {
	for _, tc := range []struct{ name, marker, boot string }{
		{"same boot", "dirty boot-a\n", "boot-a"},
		{"clean close", "clean\n", "boot-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := openNode(t, dir, func(c *Config) { c.bootID = func() (string, error) { return "boot-a", nil } })
			for i := 0; i < 20; i++ {
				if _, err := n.Publish(context.Background(), Publish{Op: "t", MsgID: msgID(t), Envelope: []byte("x")}); err != nil {
					t.Fatal(err)
				}
			}
			head := n.Head("t")
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, fsmMarkerName)); string(b) != "clean\n" {
				t.Fatalf("marker after a clean close: %q", b)
			}
			if err := os.WriteFile(filepath.Join(dir, fsmMarkerName), []byte(tc.marker), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			n = openNode(t, dir, func(c *Config) {
				c.bootID = func() (string, error) { return tc.boot, nil }
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			defer n.Close()
			if strings.Contains(logs.String(), "rebuilding") {
				t.Errorf("trusted file was rebuilt:\n%s", logs.String())
			}
			// Trusted: the state is there at once, before raft replays
			// anything.
			if got := n.st.head("t"); got != head {
				t.Errorf("head at open %+v, want %+v", got, head)
			}
		})
	}
}
