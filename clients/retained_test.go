package clients

import (
	"errors"
	"testing"

	"liaison/crypto"
	"liaison/relay/wire"
)

// With WithRetained, a subscription from below the oldest held entry gets a
// gap marker carrying the relay's anchors, then the commits kept in the
// gap, then the held entries, whose chain is checked from the anchor.
func TestSubscribeWithRetainedCrossesTheGap(t *testing.T) {
	srv := newServer(t, "n1")
	srv.AppendKind("op", wire.KindCommit, []byte("commit-1"))
	appendN(srv, "op", 2, 5)
	srv.AppendKind("op", wire.KindCommit, []byte("commit-6"))
	appendN(srv, "op", 7, 9)
	srv.SetFirst("op", 8)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 2, WithRetained())
	if err != nil {
		t.Fatal(err)
	}
	ms := recv(t, sub, 4)
	gap := ms[0]
	entries := srv.Entries("op")
	var anchor [32]byte
	for i, e := range entries[:7] {
		anchor = crypto.LogChain(anchor, uint64(i+1), e)
	}
	if gap.Gap == nil || gap.Seq != 7 || gap.Gap.From != 2 || gap.Gap.Retained != 1 || gap.Chain != srv.Chain("op", 7) || gap.Gap.LogAnchor != anchor || gap.Envelope != nil {
		t.Fatalf("gap marker %+v %+v", gap, gap.Gap)
	}
	if k := ms[1]; !k.Retained || k.Seq != 6 || k.Kind != wire.KindCommit || string(k.Envelope) != "commit-6" {
		t.Fatalf("kept commit %+v", k)
	}
	for i, m := range ms[2:] {
		if m.Gap != nil || m.Retained || m.Seq != uint64(8+i) || m.Chain != srv.Chain("op", m.Seq) {
			t.Fatalf("entry %d: %+v", i, m)
		}
	}
	if sub.Next() != 10 {
		t.Fatalf("next %d", sub.Next())
	}
	// From 1, the genesis is kept too.
	sub.Close()
	sub, err = c.Subscribe(ctxT(t), "op", 1, WithRetained())
	if err != nil {
		t.Fatal(err)
	}
	ms = recv(t, sub, 3)
	if ms[0].Gap == nil || ms[0].Gap.Retained != 2 || ms[1].Seq != 1 || ms[2].Seq != 6 {
		t.Fatalf("from 1: %+v %+v %+v", ms[0], ms[1], ms[2])
	}
}

// The relay ending a live subscription is not ignored: a retryable code
// resubscribes from the next entry, retention ends a plain subscription
// with a *CompactedError.
func TestRelayEndedSubscription(t *testing.T) {
	srv := newServer(t, "n1")
	appendN(srv, "op", 1, 3)
	c := dialT(t, testOpts(), srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub, 3)
	before := len(srv.Subscribes())
	srv.InjectFrame(&wire.Error{Op: "op", Code: wire.CodeUnavailable, Message: "read failed"})
	srv.Await(t, "a resubscribe", func() bool { return len(srv.Subscribes()) > before })
	if s := srv.Subscribes(); s[len(s)-1].From != 4 {
		t.Fatalf("resubscribed from %d", s[len(s)-1].From)
	}
	appendN(srv, "op", 4, 4)
	checkSeqs(t, srv, "op", recv(t, sub, 1), 4)

	srv.InjectFrame(&wire.Error{Op: "op", Code: wire.CodeCompacted, Seq: 9})
	for range sub.Messages() {
	}
	var ce *CompactedError
	if err := sub.Err(); !errors.Is(err, ErrCompacted) || !errors.As(err, &ce) || ce.Oldest != 9 || ce.From != 5 {
		t.Fatalf("err %v", sub.Err())
	}
}
