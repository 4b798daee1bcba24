package nemesis

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer echoes every line back until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, timeout time.Duration) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		t.Fatalf("echo returned %q", line)
	}
	return err
}

func TestProxyLinks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	target := echoServer(t)
	// Every connection from this test counts as party "a".
	p, err := NewProxy("127.0.0.1:0", target, "b", func(net.Addr) string { return "a" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, r := dialProxy(t, p.Addr())
	if err := roundTrip(t, c, r, 10*time.Second); err != nil {
		t.Fatalf("healthy link: %v", err)
	}

	// One direction blocked: the request reaches nobody until healed, then
	// it is delivered (held, like packets retransmitted after a loss).
	p.SetLink("a", "b", Link{Blocked: true})
	if err := roundTrip(t, c, r, 300*time.Millisecond); err == nil {
		t.Fatal("a blocked link passed traffic")
	}
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("held bytes after heal: %q %v", line, err)
	}
	if err := roundTrip(t, c, r, 10*time.Second); err != nil {
		t.Fatalf("healed link: %v", err)
	}

	// Blocked the other way too: a partition closes the connection and
	// refuses new ones.
	p.SetLink("a", "b", Link{Blocked: true})
	p.SetLink("b", "a", Link{Blocked: true})
	if err := roundTrip(t, c, r, 10*time.Second); err == nil {
		t.Fatal("a partitioned connection stayed open")
	}
	c2, r2 := dialProxy(t, p.Addr())
	if err := roundTrip(t, c2, r2, 10*time.Second); err == nil {
		t.Fatal("a new connection crossed the partition")
	}
	p.Heal()

	// Delay: each direction adds it.
	c3, r3 := dialProxy(t, p.Addr())
	p.SetLink("a", "b", Link{Delay: 100 * time.Millisecond})
	p.SetLink("b", "a", Link{Delay: 100 * time.Millisecond})
	start := time.Now()
	if err := roundTrip(t, c3, r3, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 200*time.Millisecond {
		t.Fatalf("round trip %v with 100 ms each way", rtt)
	}
	p.Heal()

	// CutAll drops what is open; new connections work.
	if n := p.CutAll(); n != 1 {
		t.Fatalf("cut %d connections, want 1", n)
	}
	if err := roundTrip(t, c3, r3, 10*time.Second); err == nil {
		t.Fatal("a cut connection still works")
	}
	c4, r4 := dialProxy(t, p.Addr())
	if err := roundTrip(t, c4, r4, 10*time.Second); err != nil {
		t.Fatalf("after a cut: %v", err)
	}
}
