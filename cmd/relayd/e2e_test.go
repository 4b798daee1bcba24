package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

func newSession(t testing.TB, n *node, name string) (*session.Session, *crypto.Identity) {
	t.Helper()
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return session.New(t.TempDir(), id, dialClientAs(t, nil, id, n.addr.String()), session.Options{KeyUpdateAfter: -1}), id
}

// entriesText returns the texts of decrypted messages in entries.
func entriesText(es []session.Entry) []string {
	var out []string
	for _, e := range es {
		if e.Text != "" && (e.Kind == session.EntryMessage || e.Kind == session.EntryOwn) {
			out = append(out, e.Text)
		}
	}
	return out
}

// After 1,000 end-to-end encrypted messages carrying a random canary pass
// through a real node, no file under the node's data dir (Raft log,
// snapshots, operation logs) contains the canary, while the recipient reads
// every message.
func TestRelayNeverStoresPlaintext(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.OpenOps = false // access control as in production
	n := startNode(t, cfg)
	defer n.close()
	ctx := context.Background()
	alice, _ := newSession(t, n, "alice")
	bob, bobID := newSession(t, n, "bob")
	if _, err := alice.CreateOp(ctx, "canary-op", []crypto.Invite{{Token: bobID.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	canary := "canary-" + hex.EncodeToString(raw[:])
	const count = 1000
	for i := 0; i < count; i++ {
		if _, err := alice.Send(ctx, "canary-op", fmt.Sprintf("%s #%d", canary, i), wire.ClassRoutine); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got, err := bob.Sync(ctx, "canary-op")
	if err != nil {
		t.Fatal(err)
	}
	texts := entriesText(got)
	if len(texts) != count {
		t.Fatalf("bob decrypted %d of %d messages", len(texts), count)
	}
	for i, s := range texts {
		if s != fmt.Sprintf("%s #%d", canary, i) {
			t.Fatalf("message %d reads %q", i, s)
		}
	}
	// Snapshot too, so the snapshot files exist and are searched.
	if err := n.cluster.Snapshot(); err != nil {
		t.Fatal(err)
	}
	files := 0
	needles := [][]byte{[]byte(canary), []byte(hex.EncodeToString(raw[:]))}
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, needle := range needles {
			if bytes.Contains(b, needle) {
				t.Errorf("%s contains the canary", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("searched only %d files", files)
	}
}

// Members who commit key updates while others send never lose a message:
// a message sealed in an epoch that ended before it reached the log is
// refused by the relay and re-sealed by its sender, and every member reads
// every message.
func TestNoUnableToDecryptUnderConcurrentCommits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.OpenOps = false // access control as in production
	n := startNode(t, cfg)
	defer n.close()
	ctx := context.Background()
	alice, _ := newSession(t, n, "alice")
	bob, bobID := newSession(t, n, "bob")
	carol, carolID := newSession(t, n, "carol")
	if _, err := alice.CreateOp(ctx, "busy-op", []crypto.Invite{{Token: bobID.Token(), Role: crypto.RoleOfficer}, {Token: carolID.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*session.Session{bob, carol} {
		if _, err := s.Sync(ctx, "busy-op"); err != nil {
			t.Fatal(err)
		}
	}
	const each = 30
	var wg sync.WaitGroup
	for i, s := range []*session.Session{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if _, err := s.Send(ctx, "busy-op", fmt.Sprintf("s%d-%d", i, j), wire.ClassRoutine); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < 10; j++ {
			if _, err := carol.KeyUpdate(ctx, "busy-op"); err != nil {
				t.Errorf("key update: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	for name, s := range map[string]*session.Session{"alice": alice, "bob": bob, "carol": carol} {
		if _, err := s.Sync(ctx, "busy-op"); err != nil {
			t.Fatal(err)
		}
		hist, err := s.History("busy-op", 1)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range hist {
			if len(e.Warnings) > 0 {
				t.Errorf("%s: seq %d: %v", name, e.Seq, e.Warnings)
			}
			if e.Text != "" && (e.Kind == session.EntryMessage || e.Kind == session.EntryOwn) {
				seen[e.Text] = true
			}
		}
		if len(seen) != 2*each {
			t.Errorf("%s reads %d distinct messages, want %d", name, len(seen), 2*each)
		}
	}
}

// liaisonBinary builds the liaison CLI once per test run.
var liaisonBinary = buildOnce("liaison", "../liaison")

// The README's newcomer flow, as written, with the real binaries: a relayd
// process and the liaison CLI.
func TestReadmeNewcomerFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	listen := freePort(t)
	startProc(t, t.TempDir(), listen, freePort(t))
	cli := liaisonBinary(t)
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), "LIAISON_HOME="+home, "LIAISON_RELAY="+listen, "LIAISON_PASSPHRASE=correct horse battery staple")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("liaison %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("id", "new", "--name", "Alice")
	run("op", "create", "night-watch")
	run("send", "night-watch", "Team A in position at gate 4")
	out := run("read", "night-watch", "--from", "1")
	if !regexp.MustCompile(`(?m)Alice.*: Team A in position at gate 4$`).MatchString(out) {
		t.Fatalf("read does not show the message:\n%s", out)
	}
}
