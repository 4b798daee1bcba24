package clients

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"liaison/clients/fakerelay"
	"liaison/relay/wire"
)

func appendN(srv *fakerelay.Server, op string, from, to int) {
	for i := from; i <= to; i++ {
		srv.Append(op, []byte(fmt.Sprint("entry-", i)))
	}
}

func TestSubscribeFromNThenLive(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 5)
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	sub, err := c.Subscribe(ctx, "op", 3)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Head() != 5 {
		t.Fatalf("head %d", sub.Head())
	}
	checkSeqs(t, srv, "op", recv(t, sub, 3), 3)
	for i := 6; i <= 7; i++ {
		if _, err := c.Publish(ctx, "op", []byte(fmt.Sprint("entry-", i))); err != nil {
			t.Fatal(err)
		}
	}
	checkSeqs(t, srv, "op", recv(t, sub, 2), 6)
	if sub.Next() != 8 {
		t.Fatalf("next %d", sub.Next())
	}
}

func TestSubscribeEmptyLog(t *testing.T) {
	srv := newServer(t, "n1")
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "empty", 1)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Head() != 0 {
		t.Fatalf("head %d", sub.Head())
	}
	srv.Append("empty", []byte("first"))
	checkSeqs(t, srv, "empty", recv(t, sub, 1), 1)
	if _, err := c.Subscribe(ctxT(t), "empty", 1); !errors.Is(err, ErrAlreadySubscribed) {
		t.Fatalf("second subscribe: %v", err)
	}
}

// The connection drops in the middle of a catch-up and again between live
// entries; the subscription resumes with no gap and no duplicate.
func TestResumeAfterDropMidStream(t *testing.T) {
	srv := newServer(t, "n1")
	srv.SetBatch(2)
	frames := 0
	srv.SetOnDeliver(func(connID int, d *wire.Deliver) fakerelay.DeliverAction {
		if connID == 1 {
			frames++
			if frames == 2 {
				return fakerelay.SendThenDrop
			}
		}
		return fakerelay.Send
	})
	appendN(srv, "op", 1, 10)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, srv, "op", recv(t, sub, 10), 1)
	if srv.Handshakes() < 2 {
		t.Fatalf("%d handshakes: no drop happened", srv.Handshakes())
	}
	subs := srv.Subscribes()
	if last := subs[len(subs)-1]; last.From < 2 || last.From > 5 {
		t.Fatalf("resubscribed from %d", last.From)
	}

	srv.DropAll()
	appendN(srv, "op", 11, 15)
	checkSeqs(t, srv, "op", recv(t, sub, 5), 11)
	srv.DropAll()
	srv.Await(t, "reconnect", func() bool { return srv.Live() == 1 })
	appendN(srv, "op", 16, 16)
	checkSeqs(t, srv, "op", recv(t, sub, 1), 16)
}

// A forged entry shown after a reconnect breaks the chain: the
// subscription ends with ErrChainMismatch.
func TestChainMismatchAfterReconnect(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 3)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 3)
	srv.DropAll()
	srv.Rewrite("op", 2, []byte("forged"))
	appendN(srv, "op", 4, 4)
	awaitClosed(t, sub)
	var cm *ChainMismatchError
	if !errors.Is(sub.Err(), ErrChainMismatch) || !errors.As(sub.Err(), &cm) || cm.Seq != 3 {
		t.Fatalf("err %v", sub.Err())
	}
}

// A frame overlapping entries already received, with different content,
// is detected even though it carries the right prev.
func TestChainMismatchInOverlap(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 3)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 3)
	prev := srv.Chain("op", 1)
	srv.InjectFrame(&wire.Deliver{Op: "op", Seq: 2, Prev: prev[:], Envelopes: [][]byte{[]byte("forged"), []byte("entry-3"), []byte("new-4")}})
	awaitClosed(t, sub)
	if !errors.Is(sub.Err(), ErrChainMismatch) {
		t.Fatalf("err %v", sub.Err())
	}
}

func TestDuplicateDeliverDropped(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 3)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 3)
	entries := srv.Entries("op")
	prev := srv.Chain("op", 1)
	srv.InjectFrame(&wire.Deliver{Op: "op", Seq: 2, Prev: prev[:], Envelopes: entries[1:3]})
	srv.InjectFrame(&wire.Deliver{Op: "op", Seq: 1, Prev: make([]byte, 32), Envelopes: entries[:1]})
	appendN(srv, "op", 4, 4)
	checkSeqs(t, srv, "op", recv(t, sub, 1), 4)
}

// A deliver frame that starts beyond the next expected sequence is never
// passed on; the client re-subscribes from where it is.
func TestGapNeverPassesThrough(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 3)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 3)
	bogusPrev := sha256.Sum256([]byte("whatever"))
	srv.InjectFrame(&wire.Deliver{Op: "op", Seq: 6, Prev: bogusPrev[:], Envelopes: [][]byte{[]byte("bogus-6")}})
	srv.Await(t, "re-subscribe from 4", func() bool {
		s := srv.Subscribes()
		return len(s) == 2 && s[1].From == 4
	})
	appendN(srv, "op", 4, 6)
	msgs := recv(t, sub, 3)
	checkSeqs(t, srv, "op", msgs, 4)
	for _, m := range msgs {
		if bytes.HasPrefix(m.Envelope, []byte("bogus")) {
			t.Fatal("gap frame passed through")
		}
	}
	if srv.Handshakes() != 1 {
		t.Fatalf("%d handshakes", srv.Handshakes())
	}
}

// An undecodable frame drops the connection; the subscription resumes.
func TestBadFrameReconnects(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 2)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 2)
	srv.Inject([]byte{0xff, 0x00, 0x01})
	srv.Await(t, "reconnect", func() bool { return srv.Handshakes() == 2 && srv.Live() == 1 })
	appendN(srv, "op", 3, 3)
	checkSeqs(t, srv, "op", recv(t, sub, 1), 3)
}

func TestSubscribeCompacted(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 6)
	srv.SetFirst("op", 5)
	c := dialT(t, testOpts(), srv.Addr)
	_, err := c.Subscribe(ctxT(t), "op", 2)
	var ce *CompactedError
	var we *wire.Error
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &ce) || ce.Oldest != 5 || !errors.As(err, &we) || we.Code != wire.CodeCompacted {
		t.Fatalf("err %v", err)
	}
	// The failed subscription is gone: subscribing again works.
	sub, err := c.Subscribe(ctxT(t), "op", 5)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, srv, "op", recv(t, sub, 2), 5)
}

// A reader that does not drain its channel holds the connection back; once
// it drains, everything arrives in order.
func TestBackpressure(t *testing.T) {
	srv := newServer(t, "n1")
	opts := testOpts()
	opts.SubscriptionBuffer = 4
	reader := dialT(t, opts, srv.Addr)
	writer := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	sub, err := reader.Subscribe(ctx, "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 300; i++ {
		if _, err := writer.Publish(ctx, "op", []byte(fmt.Sprint("entry-", i))); err != nil {
			t.Fatal(err)
		}
	}
	checkSeqs(t, srv, "op", recv(t, sub, 300), 1)
}

func TestSubscriptionClose(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 2)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	for range sub.Messages() {
	}
	if sub.Err() != nil {
		t.Fatalf("err %v", sub.Err())
	}
	sub2, err := c.Subscribe(ctxT(t), "op", 2)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, srv, "op", recv(t, sub2, 1), 2)
}

// A subscription resumed from a persisted position verifies the relay's
// history from the first frame.
func TestSubscribeWithPrevChain(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 4)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 3, WithPrevChain(srv.Chain("op", 2)))
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, srv, "op", recv(t, sub, 2), 3)
	sub.Close()

	sub, err = c.Subscribe(ctxT(t), "op", 3, WithPrevChain(sha256.Sum256([]byte("another history"))))
	if err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, sub)
	var cm *ChainMismatchError
	if !errors.As(sub.Err(), &cm) || cm.Seq != 2 {
		t.Fatalf("err %v", sub.Err())
	}
}
