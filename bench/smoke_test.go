package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSmoke runs the harness in -smoke mode against Liaison (and against
// nats-server when it is installed) so that it keeps building and running;
// every figure it promises must be there and positive.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real server processes")
	}
	systems := "liaison"
	if _, err := findNatsServer(""); err == nil {
		systems += ",jetstream-always"
	} else {
		t.Logf("measuring Liaison only: %v", err)
	}
	cfg, err := parseConfig([]string{"-smoke", "-systems", systems, "-workdir", t.TempDir()}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := measureAll(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		sysLiaison:  {mThroughput, mCommit, mAppendLeader, mAppendFollower, mLatP50, mLatP99, mLatP999, mCatchup, mIdle, mFanout, mFieldSecs, mFieldUtil, mFieldBytes},
		sysJSAlways: {mThroughput, mLatP99, mCatchup, mIdle, mFanout},
	}
	for _, sys := range splitList(systems) {
		for _, m := range want[sys] {
			found := false
			for _, f := range res.Figures {
				if f.System == sys && f.Metric == m {
					found = true
					// 200 idle connections are too few for the RSS
					// difference to be meaningful: only its presence counts.
					if m != mIdle && !(f.Value > 0) {
						t.Errorf("%s %s = %v, want > 0", sys, m, f.Value)
					}
				}
			}
			if !found {
				t.Errorf("%s: no %s figure", sys, m)
			}
		}
	}
	if md := markdown(cfg, res); !strings.Contains(md, "Where a durable publish's time goes") {
		t.Errorf("report without the commit breakdown:\n%s", md)
	}
}

// The shaping proxy holds a link to its rate and delay: 64 KiB at 4 Mbit/s
// with a 40 ms round trip cannot arrive in less than 131 ms + 20 ms, and
// every byte is counted.
func TestShaperRate(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- int(n)
	}()
	sh, err := newShaper(ln.Addr().String(), 4_000_000, 40*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	c, err := net.Dial("tcp", sh.addr())
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("server received %d bytes, want %d", n, size)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing arrived")
	}
	if took, floor := time.Since(start), time.Duration(size*8)*time.Second/4_000_000+20*time.Millisecond; took < floor {
		t.Fatalf("64 KiB crossed a 4 Mbit/s link in %v, faster than its floor %v", took, floor)
	}
	c.Close()
	if up := sh.up.Load(); up != size {
		t.Fatalf("shaper counted %d bytes up, want %d", up, size)
	}
}
