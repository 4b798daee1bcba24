package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkBoltFile opens a bbolt file read-only and runs bbolt's consistency
// check over every page.
func checkBoltFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: the check reads tx until done
			if first == nil {
				first = fmt.Errorf("check %s: %w", path, err)
			}
		}
		return first
	})
}

// Every node of a three-node cluster is killed at once with SIGKILL while
// publishes stream in, twenty times. Each time, while they are down, every
// node's fsm.db and raft.db must open and pass bbolt's check; after each
// restart writes resume; at the end every node's log holds every
// acknowledged publish exactly once at its acknowledged sequence, and
// nothing else (the full checker).
func TestKillAllNodesDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes")
	}
	rounds := 20
	if v := os.Getenv("LIAISON_CRASH_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("LIAISON_CRASH_ROUNDS=%q: want a positive number (%v)", v, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := StartCluster(ctx, t.TempDir(), 3, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := newRecorder()
	cfg := Config{Ops: []string{"crash-a", "crash-b"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publisher(ctx, i, shuffled(rand.New(rand.NewPCG(uint64(i), 9)), c.ClientAddrs()), cfg, uint64(i), rec, stop)
		}()
	}
	acked := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := 0
		for _, p := range rec.h.Publishes {
			if p.Outcome == Acked {
				n++
			}
		}
		return n
	}
	for round := 1; round <= rounds; round++ {
		// Writes are flowing: some acks arrived since the last restart.
		before := acked()
		wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
		err := waitFor(wctx, func() bool { return acked() >= before+20 })
		wcancel()
		if err != nil {
			t.Fatalf("round %d: writes did not resume after the restart (%d acks)", round, acked())
		}
		var kill sync.WaitGroup
		for _, n := range c.Nodes {
			kill.Add(1)
			go func() { defer kill.Done(); n.Kill() }()
		}
		kill.Wait()
		for _, n := range c.Nodes {
			for _, f := range []string{"fsm.db", filepath.Join("raft", "raft.db")} {
				if err := checkBoltFile(filepath.Join(n.DataDir, f)); err != nil {
					t.Fatalf("round %d: %s: %v", round, n.ID, err)
				}
			}
		}
		for _, n := range c.Nodes {
			if err := n.Start(""); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	hctx, hcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer hcancel()
	if err := c.WaitHealthy(hctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		logs, err := readLogs(ctx, n, cfg.Ops)
		if err != nil {
			t.Fatal(err)
		}
		rec.h.Logs[n.ID] = logs
	}
	h := rec.history()
	for _, n := range c.Nodes {
		h.Crashes = append(h.Crashes, n.Crashes()...)
		_, bad, err := scanLog(n)
		if err != nil {
			t.Fatal(err)
		}
		h.Crashes = append(h.Crashes, bad...)
	}
	r := Check(h, CheckOptions{LinearizabilityTimeout: time.Minute})
	t.Logf("%d rounds of killing every node:\n%s", rounds, r)
	if r.Anomalies() != 0 {
		t.Fatalf("%d anomalies", r.Anomalies())
	}
	if r.Acked < rounds*20 {
		t.Fatalf("only %d acks", r.Acked)
	}
}
