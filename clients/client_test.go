package clients

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"liaison/clients/fakerelay"
	"liaison/relay/wire"
)

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7400":         "ws://127.0.0.1:7400/ws",
		"relay.example:443":      "ws://relay.example:443/ws",
		"ws://h:1/ws":            "ws://h:1/ws",
		"ws://h:1":               "ws://h:1/ws",
		"wss://h.example/ws":     "wss://h.example/ws",
		"wss://h.example/custom": "wss://h.example/custom",
		" [::1]:7400 ":           "ws://[::1]:7400/ws",
	} {
		got, err := NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "nohost", "http://h:1/ws", "ws://"} {
		if _, err := NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) accepted", bad)
		}
	}
}

func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDialSkipsUnreachable(t *testing.T) {
	srv := newServer(t, "n1")
	c := dialT(t, testOpts(), refusedAddr(t), srv.Addr)
	if c.Node() != "n1" {
		t.Fatalf("node %q", c.Node())
	}
}

func TestDialNoneReachable(t *testing.T) {
	_, err := Dial(ctxT(t), []string{refusedAddr(t)}, testOpts())
	if err == nil {
		t.Fatal("dial succeeded")
	}
}

func TestAuthFrameAndSigner(t *testing.T) {
	srv := newServer(t, "n1")
	opts := testOpts()
	var challenges [][]byte
	opts.Signer = func(ch []byte) ([]byte, []byte, error) {
		challenges = append(challenges, bytes.Clone(ch))
		return []byte("identity-token"), []byte("signature"), nil
	}
	dialT(t, opts, srv.Addr)
	a := srv.Auths()
	if len(a) != 1 || a[0].Version != wire.Version || a[0].Client != "liaison-go" ||
		string(a[0].Identity) != "identity-token" || string(a[0].Signature) != "signature" {
		t.Fatalf("auth frames %+v", a)
	}
	if len(challenges) != 1 || len(challenges[0]) != wire.ChallengeLen {
		t.Fatalf("challenges %x", challenges)
	}

	plain := dialT(t, testOpts(), srv.Addr)
	_ = plain
	if a := srv.Auths(); a[1].Identity != nil || a[1].Signature != nil {
		t.Fatalf("anonymous auth carries %+v", a[1])
	}
}

func TestSignerErrorFailsDial(t *testing.T) {
	srv := newServer(t, "n1")
	opts := testOpts()
	boom := errors.New("no key")
	opts.Signer = func([]byte) ([]byte, []byte, error) { return nil, nil, boom }
	if _, err := Dial(ctxT(t), []string{srv.Addr}, opts); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

// Close ends subscriptions and pending publishes and leaves no goroutine
// behind (TestMain checks with goleak).
func TestCloseEndsEverything(t *testing.T) {
	srv := newServer(t, "n1")
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision { return fakerelay.Decision{Action: fakerelay.Ignore} })
	appendN(srv, "op", 1, 2)
	c := dialT(t, testOpts(), srv.Addr)
	ctx := ctxT(t)
	sub, err := c.Subscribe(ctx, "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Publish(ctx, "op", []byte("x"))
		errc <- err
	}()
	srv.Await(t, "publish", func() bool { return len(srv.Publishes()) == 1 })
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("publish err %v", err)
	}
	for range sub.Messages() {
	}
	if !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("sub err %v", sub.Err())
	}
	if _, err := c.Publish(ctx, "op", []byte("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if _, err := c.Subscribe(ctx, "op2", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	c.Close()
}

// Close must not hang while the reader is blocked on a full subscription
// channel, nor while the client is reconnecting to a dead relay.
func TestCloseWhileBlockedOrReconnecting(t *testing.T) {
	srv := fakerelay.New("n1")
	opts := testOpts()
	opts.SubscriptionBuffer = 1
	appendN(srv, "op", 1, 10)
	c := dialT(t, opts, srv.Addr)
	sub, err := c.Subscribe(ctxT(t), "op", 1)
	if err != nil {
		t.Fatal(err)
	}
	_ = sub
	srv.Close() // client now loops on reconnect
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
}

func TestMsgIDTimeOrdered(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := newMsgIDAt(t0), newMsgIDAt(t0.Add(time.Millisecond))
	if bytes.Compare(a[:], b[:]) >= 0 {
		t.Fatalf("%s !< %s", a, b)
	}
	if !a.Time().Equal(t0) {
		t.Fatalf("time %v", a.Time())
	}
	if x, y := NewMsgID(), NewMsgID(); x == y {
		t.Fatal("ids repeat")
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := range 40 {
		d := backoff(10*time.Millisecond, time.Second, n)
		if d < 5*time.Millisecond || d > time.Second {
			t.Fatalf("attempt %d: %v", n, d)
		}
	}
	_ = context.Background
}
