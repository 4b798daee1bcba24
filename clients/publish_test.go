package clients

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/clients/fakerelay"
	"liaison/relay/wire"
)

func TestPublishAck(t *testing.T) {
	srv := newServer(t, "n1")
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	for i := 1; i <= 3; i++ {
		res, err := c.Publish(ctx, "op-1", []byte(fmt.Sprint("m", i)), WithClass(wire.ClassFlash))
		if err != nil {
			t.Fatal(err)
		}
		if res.Seq != uint64(i) || res.Dup {
			t.Fatalf("publish %d: %+v", i, res)
		}
		p := srv.Publishes()[i-1]
		if [16]byte(p.MsgID) != res.MsgID || p.Class != wire.ClassFlash {
			t.Fatalf("publish %d: frame %+v, result %+v", i, p, res)
		}
	}
	if got := len(srv.Entries("op-1")); got != 3 {
		t.Fatalf("%d entries", got)
	}
	if c.Node() != "n1" {
		t.Fatalf("node %q", c.Node())
	}
}

func TestPublishInvalid(t *testing.T) {
	srv := newServer(t, "n1")
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	if _, err := c.Publish(ctx, ".bad", []byte("x")); !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("bad op: %v", err)
	}
	if _, err := c.Publish(ctx, "op", nil); err == nil {
		t.Fatal("empty envelope accepted")
	}
	if _, err := c.Publish(ctx, "op", make([]byte, wire.MaxEnvelope+1)); err == nil {
		t.Fatal("oversized envelope accepted")
	}
	if n := len(srv.Publishes()); n != 0 {
		t.Fatalf("%d publishes sent", n)
	}
}

// Publishes must not wait for each other's acks: the fake holds every
// publish until 64 are in flight at once.
func TestPublishPipelined(t *testing.T) {
	srv := newServer(t, "n1")
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision { return fakerelay.Decision{Action: fakerelay.Defer} })
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	const n = 64
	seqs := make(chan uint64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := c.Publish(ctx, "op", []byte(fmt.Sprint("m", i)))
			if err != nil {
				errs <- err
				return
			}
			seqs <- res.Seq
		})
	}
	srv.Await(t, "64 publishes in flight", func() bool { return srv.Deferred() == n })
	srv.ReleaseDeferred()
	wg.Wait()
	close(seqs)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] || s < 1 || s > n {
			t.Fatalf("bad or repeated seq %d", s)
		}
		seen[s] = true
	}
	if srv.Handshakes() != 1 {
		t.Fatalf("%d handshakes", srv.Handshakes())
	}
}

// The relay commits, then the connection drops before the ack: the client
// re-sends with the same msgid and gets the original sequence as a dup.
func TestPublishDedupeOnResend(t *testing.T) {
	srv := newServer(t, "n1")
	calls := 0
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision {
		calls++
		if calls == 1 {
			return fakerelay.Decision{Action: fakerelay.CommitThenDrop}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	c := dialT(t, testOpts(), srv.Addr)
	srv.Append("op", []byte("earlier"))
	res, err := c.Publish(ctxT(t), "op", []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 2 || !res.Dup {
		t.Fatalf("result %+v, want seq 2 dup", res)
	}
	if n := len(srv.Entries("op")); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	pubs := srv.Publishes()
	if len(pubs) != 2 || string(pubs[0].MsgID) != string(pubs[1].MsgID) || pubs[0].Req != pubs[1].Req {
		t.Fatalf("publish frames %+v", pubs)
	}
	if srv.Handshakes() != 2 {
		t.Fatalf("%d handshakes, want 2", srv.Handshakes())
	}
}

func TestPublishRetryableError(t *testing.T) {
	for _, code := range []wire.Code{wire.CodeUnavailable, wire.CodeTimeout, wire.CodeRateLimited, wire.CodeInternal, wire.CodeSlowConsumer} {
		t.Run(code.String(), func(t *testing.T) {
			srv := newServer(t, "n1")
			calls := 0
			srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision {
				calls++
				if calls <= 2 {
					return fakerelay.Decision{Action: fakerelay.Reject, Code: code}
				}
				return fakerelay.Decision{Action: fakerelay.Commit}
			})
			c := dialT(t, testOpts(), srv.Addr)
			res, err := c.Publish(ctxT(t), "op", []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Seq != 1 || res.Dup {
				t.Fatalf("result %+v", res)
			}
			if n := len(srv.Publishes()); n != 3 {
				t.Fatalf("%d publish frames, want 3", n)
			}
		})
	}
}

func TestPublishNonRetryableError(t *testing.T) {
	srv := newServer(t, "n1")
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision {
		return fakerelay.Decision{Action: fakerelay.Reject, Code: wire.CodeForbidden}
	})
	c := dialT(t, testOpts(), srv.Addr)
	_, err := c.Publish(ctxT(t), "op", []byte("x"))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeForbidden {
		t.Fatalf("err %v, want forbidden", err)
	}
	if errors.Is(err, ErrUnknownOutcome) {
		t.Fatal("definite failure reported as unknown outcome")
	}
}

func TestPublishContextCancelUnknownOutcome(t *testing.T) {
	srv := newServer(t, "n1")
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision { return fakerelay.Decision{Action: fakerelay.Ignore} })
	c := dialT(t, testOpts(), srv.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Publish(ctx, "op", []byte("x"))
		errc <- err
	}()
	srv.Await(t, "publish frame", func() bool { return len(srv.Publishes()) == 1 })
	cancel()
	err := <-errc
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	c.mu.Lock()
	pending := len(c.pubs)
	c.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d publishes still pending: an abandoned publish would be re-sent", pending)
	}
}

// A caller with a persistent outbox re-sends with the same msgid from a new
// process and learns the original sequence.
func TestPublishWithMsgIDAcrossClients(t *testing.T) {
	srv := newServer(t, "n1")
	ctx := ctxT(t)
	a := dialT(t, testOpts(), srv.URL)
	id := NewMsgID()
	r1, err := a.Publish(ctx, "op", []byte("x"), WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := dialT(t, testOpts(), srv.URL)
	r2, err := b.Publish(ctx, "op", []byte("x"), WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Dup || !r2.Dup || r1.Seq != r2.Seq || r2.MsgID != id {
		t.Fatalf("first %+v, second %+v", r1, r2)
	}
}

// A publish pending on a node that dies completes on the next node of the
// list.
func TestPublishFailsOverToNextRelay(t *testing.T) {
	a := fakerelay.New("a")
	defer a.Close()
	b := newServer(t, "b")
	a.SetOnPublish(func(*wire.Publish) fakerelay.Decision { return fakerelay.Decision{Action: fakerelay.Ignore} })
	c := dialT(t, testOpts(), a.URL, b.URL)
	done := make(chan error, 1)
	var res PublishResult
	ctx := ctxT(t)
	go func() {
		var err error
		res, err = c.Publish(ctx, "op", []byte("x"))
		done <- err
	}()
	a.Await(t, "publish on a", func() bool { return len(a.Publishes()) == 1 })
	a.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.Seq != 1 || len(b.Entries("op")) != 1 {
		t.Fatalf("result %+v, b has %d entries", res, len(b.Entries("op")))
	}
	if c.Node() != "b" {
		t.Fatalf("node %q", c.Node())
	}
}

// Many publishers while the relay drops connections, commits without acking
// and refuses with retryable errors: every publish returns once, and the log
// holds each message exactly once.
func TestPublishChaos(t *testing.T) {
	srv := newServer(t, "n1")
	frames, drops := 0, 0
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision {
		frames++
		// Drops are capped: a reconnect re-sends every pending publish,
		// and a hook dropping every 23rd frame forever would drop every
		// such burst (a livelock of the test, not of the client).
		switch {
		case frames%23 == 0 && drops < 12:
			drops++
			return fakerelay.Decision{Action: fakerelay.CommitThenDrop}
		case frames%29 == 0 && drops < 12:
			drops++
			return fakerelay.Decision{Action: fakerelay.DropBeforeCommit}
		case frames%7 == 0:
			return fakerelay.Decision{Action: fakerelay.Reject, Code: wire.CodeUnavailable}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	const workers, each = 32, 20
	var mu sync.Mutex
	got := map[string]uint64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf("w%d-%d", w, i)
				res, err := c.Publish(ctx, "op", []byte(body))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[body] = res.Seq
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	entries := srv.Entries("op")
	if len(entries) != workers*each {
		t.Fatalf("%d entries, want %d", len(entries), workers*each)
	}
	for body, seq := range got {
		if string(entries[seq-1]) != body {
			t.Fatalf("seq %d holds %q, want %q", seq, entries[seq-1], body)
		}
	}
	if srv.Handshakes() < 2 {
		t.Fatalf("only %d handshakes: the chaos did not happen", srv.Handshakes())
	}
}

func TestPublishKind(t *testing.T) {
	srv := fakerelay.New("n1")
	defer srv.Close()
	srv.SetCheckCommits(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, []string{srv.URL}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Publish(ctx, "op", []byte("m1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "op", []byte("c1"), WithKind(wire.KindCommit)); err != nil {
		t.Fatal(err)
	}
	srv.SetCheckCommits(true)
	if _, err := c.Publish(ctx, "op", []byte("not a commit"), WithKind(wire.KindCommit)); err == nil || !strings.Contains(err.Error(), "bad_request") {
		t.Fatalf("undecodable commit: %v", err)
	}
	sub, err := c.Subscribe(ctx, "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, want := range []wire.Kind{wire.KindMessage, wire.KindCommit} {
		m := <-sub.Messages()
		if m.Kind != want || m.Seq != uint64(i+1) {
			t.Fatalf("entry %d: kind %v seq %d", i, m.Kind, m.Seq)
		}
	}
}
