package clients

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"liaison/clients/fakerelay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testOpts() Options {
	return Options{
		DialTimeout:  5 * time.Second,
		ReconnectMin: 2 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
	}
}

func newServer(t *testing.T, node string) *fakerelay.Server {
	t.Helper()
	s := fakerelay.New(node)
	t.Cleanup(s.Close)
	return s
}

func dialT(t *testing.T, opts Options, urls ...string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, urls, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv reads n messages from s, failing the test if they do not come.
func recv(t *testing.T, s *Subscription, n int) []Message {
	t.Helper()
	out := make([]Message, 0, n)
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for len(out) < n {
		select {
		case m, ok := <-s.Messages():
			if !ok {
				t.Fatalf("subscription ended after %d of %d messages: %v", len(out), n, s.Err())
			}
			out = append(out, m)
		case <-timeout.C:
			t.Fatalf("timed out after %d of %d messages", len(out), n)
		}
	}
	return out
}

// awaitClosed waits for the subscription's channel to close, failing on any
// message.
func awaitClosed(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case m, ok := <-s.Messages():
		if ok {
			t.Fatalf("unexpected message seq %d %q", m.Seq, m.Envelope)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscription did not end")
	}
}

// checkSeqs checks that msgs carry sequences from, from+1, ... and the
// fake's envelopes and chain values.
func checkSeqs(t *testing.T, srv *fakerelay.Server, op string, msgs []Message, from uint64) {
	t.Helper()
	entries := srv.Entries(op)
	for i, m := range msgs {
		want := from + uint64(i)
		if m.Seq != want {
			t.Fatalf("message %d: seq %d, want %d", i, m.Seq, want)
		}
		if string(m.Envelope) != string(entries[want-1]) {
			t.Fatalf("seq %d: envelope %q, want %q", want, m.Envelope, entries[want-1])
		}
		if m.Chain != srv.Chain(op, want) {
			t.Fatalf("seq %d: chain differs from relay's", want)
		}
		if m.Op != op {
			t.Fatalf("seq %d: op %q", want, m.Op)
		}
	}
}
