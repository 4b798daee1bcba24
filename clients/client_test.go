package clients

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"liaison/clients/fakerelay"
	"liaison/crypto"
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
	id, err := crypto.NewIdentity(rand.Reader, "alice")
	if err != nil {
		t.Fatal(err)
	}
	opts := testOpts()
	opts.Identity = id
	dialT(t, opts, srv.Addr)
	a := srv.Auths()
	if len(a) != 1 || a[0].Version != wire.Version || a[0].Client != "liaison-go" ||
		!bytes.Equal(a[0].Identity, id.Token().Marshal()) || len(a[0].Signature) != 64 || a[0].Binding != wire.BindingNone {
		t.Fatalf("auth frames %+v", a)
	}

	// A Signer sees the login to sign: the hello's challenge, node and time.
	var logins []crypto.Login
	opts = testOpts()
	inner := IdentitySigner(id)
	opts.Signer = func(l crypto.Login) ([]byte, []byte, error) {
		logins = append(logins, l)
		return inner(l)
	}
	dialT(t, opts, srv.Addr)
	if len(logins) != 1 || len(logins[0].Challenge) != wire.ChallengeLen || logins[0].Node != "n1" || logins[0].Time == 0 || logins[0].Channel != nil {
		t.Fatalf("logins %+v", logins)
	}

	// Without Identity or Signer the client makes up an ephemeral identity.
	dialT(t, testOpts(), srv.Addr)
	if a := srv.Auths(); len(a) != 3 || len(a[2].Identity) == 0 || bytes.Equal(a[2].Identity, a[0].Identity) {
		t.Fatalf("ephemeral auth %+v", a[2])
	}
}

func TestBadSignatureRefused(t *testing.T) {
	srv := newServer(t, "n1")
	id, err := crypto.NewIdentity(rand.Reader, "alice")
	if err != nil {
		t.Fatal(err)
	}
	opts := testOpts()
	opts.Signer = func(l crypto.Login) ([]byte, []byte, error) {
		l.Node = "another-node" // signed for somewhere else
		return IdentitySigner(id)(l)
	}
	_, err = Dial(ctxT(t), []string{srv.Addr}, opts)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeUnauthenticated {
		t.Fatalf("err %v", err)
	}
}

func TestSignerErrorFailsDial(t *testing.T) {
	srv := newServer(t, "n1")
	opts := testOpts()
	boom := errors.New("no key")
	opts.Signer = func(crypto.Login) ([]byte, []byte, error) { return nil, nil, boom }
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
