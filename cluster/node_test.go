package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// freeAddr returns a free loopback address for a node to bind.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		// Below the kernel's ephemeral range (32768-60999 here), so an
		// outgoing connection of another test cannot take the port between
		// this check and the node binding it.
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+mrand.IntN(22000)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port found")
	return ""
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openNode starts a bootstrapped one-node cluster in dir and waits for it to
// lead.
func openNode(t testing.TB, dir string, opts ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{NodeID: "n1", DataDir: dir, RaftBind: freeAddr(t), Bootstrap: true, Logger: quietLogger(), ElectionTimeout: 200 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	return n
}

// msgID returns a time-ordered message id, as clients make them: a
// big-endian millisecond time, then random bytes.
func msgID(t testing.TB) (id [MsgIDLen]byte) {
	if _, err := rand.Read(id[6:]); err != nil {
		t.Fatal(err)
	}
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	return id
}

func TestPublishReadRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	ctx := context.Background()
	var ids [][MsgIDLen]byte
	for i := 1; i <= 5; i++ {
		id := msgID(t)
		ids = append(ids, id)
		r, err := n.Publish(ctx, Publish{Op: "op1", MsgID: id, Envelope: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i) || r.Dup {
			t.Fatalf("publish %d: got %+v", i, r)
		}
	}
	r, err := n.Publish(ctx, Publish{Op: "op1", MsgID: ids[2], Envelope: []byte("again")})
	if err != nil || r.Seq != 3 || !r.Dup {
		t.Fatalf("duplicate publish: %+v %v", r, err)
	}
	want, err := n.Read("op1", 1, 100, 1<<20)
	if err != nil || len(want.Envelopes) != 5 {
		t.Fatalf("read: %d entries, %v", len(want.Envelopes), err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, dir)
	defer n.Close()
	got, err := n.Read("op1", 1, 100, 1<<20)
	if err != nil || len(got.Envelopes) != 5 {
		t.Fatalf("read after restart: %d entries, %v", len(got.Envelopes), err)
	}
	prev := got.Prev
	for i, e := range got.Envelopes {
		if string(e) != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("entry %d = %q", i+1, e)
		}
		prev = chainNext(prev, e)
	}
	if h := n.Head("op1"); h.Last != 5 || h.Chain != prev {
		t.Fatalf("head %+v, chain mismatch", h)
	}
	r, err = n.Publish(ctx, Publish{Op: "op1", MsgID: ids[4], Envelope: []byte("again")})
	if err != nil || r.Seq != 5 || !r.Dup {
		t.Fatalf("dedupe after restart: %+v %v", r, err)
	}
	r, err = n.Publish(ctx, Publish{Op: "op1", MsgID: msgID(t), Envelope: []byte("m6")})
	if err != nil || r.Seq != 6 {
		t.Fatalf("publish after restart: %+v %v", r, err)
	}
}

func TestConcurrentPublishersGetConsecutiveSeqs(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	const writers, each = 64, 20
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := n.Publish(context.Background(), Publish{Op: "busy", MsgID: msgID(t), Envelope: []byte("x")})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[r.Seq] {
					errs <- fmt.Errorf("seq %d twice", r.Seq)
				}
				seen[r.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for s := uint64(1); s <= writers*each; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing", s)
		}
	}
	st := n.Status()
	if st.Entries >= st.Messages {
		t.Fatalf("no group commit: %d entries for %d messages", st.Entries, st.Messages)
	}
	t.Logf("%d messages in %d raft entries", st.Messages, st.Entries)
}

func TestWatchAnnouncesInOrder(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	var mu sync.Mutex
	var next uint64 = 1
	var bad error
	done := make(chan struct{})
	cancel := n.Watch(func(bs []Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bs {
			if b.Seq != next && bad == nil {
				bad = fmt.Errorf("batch at %d, want %d", b.Seq, next)
			}
			next = b.Seq + uint64(len(b.Envelopes))
			if next == 101 {
				close(done)
			}
		}
	})
	defer cancel()
	for i := 0; i < 100; i++ {
		n.Submit(Publish{Op: "w", MsgID: msgID(t), Envelope: []byte("e")}, func(Result, error) {})
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not see 100 entries")
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatal(bad)
	}
}

func TestReadCompactedAndPastEnd(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	if _, err := n.Publish(context.Background(), Publish{Op: "r", MsgID: msgID(t), Envelope: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	b, err := n.Read("r", 2, 10, 1<<20)
	if err != nil || len(b.Envelopes) != 0 {
		t.Fatalf("past end: %+v %v", b, err)
	}
	if b.Prev != n.Head("r").Chain {
		t.Fatal("past-end read should carry the head's chain as Prev")
	}
	if _, err := n.Read("r", 0, 10, 1<<20); !errors.Is(err, ErrInvalid) {
		t.Fatalf("from 0: %v", err)
	}
	if _, err := n.Publish(context.Background(), Publish{Op: "", MsgID: msgID(t), Envelope: []byte("a")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty op: %v", err)
	}
}
