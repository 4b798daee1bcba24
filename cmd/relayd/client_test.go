package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"liaison/clients"
	"liaison/crypto"
)

// dialClient connects a client with an ephemeral identity.
func dialClient(t testing.TB, addrs ...string) *clients.Client {
	t.Helper()
	return dialClientAs(t, nil, nil, addrs...)
}

func dialClientTLS(t testing.TB, tc *tls.Config, addrs ...string) *clients.Client {
	t.Helper()
	return dialClientAs(t, tc, nil, addrs...)
}

// dialClientAs connects a client that authenticates as id (ephemeral when
// nil), over TLS when tc is set.
func dialClientAs(t testing.TB, tc *tls.Config, id *crypto.Identity, addrs ...string) *clients.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := clients.Dial(ctx, addrs, clients.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
		TLSConfig:    tc,
		Identity:     id,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads n messages from s, failing on a gap or a duplicate.
func receive(t testing.TB, s *clients.Subscription, from uint64, n int) []clients.Message {
	t.Helper()
	var out []clients.Message
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case m, ok := <-s.Messages():
			if !ok {
				t.Fatalf("subscription ended after %d messages: %v", len(out), s.Err())
			}
			if want := from + uint64(len(out)); m.Seq != want {
				t.Fatalf("got seq %d, want %d", m.Seq, want)
			}
			out = append(out, m)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// Two clients on real WebSockets publish to one operation and each sees
// both clients' messages in the same order with the same chain.
func TestTwoClientsPublishAndSubscribe(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	ctx := context.Background()
	a, b := dialClient(t, n.addr.String()), dialClient(t, n.addr.String())
	sa, err := a.Subscribe(ctx, "ops-room", 1)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Subscribe(ctx, "ops-room", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		r, err := c.Publish(ctx, "ops-room", clients.PlaintextEnvelope(fmt.Sprint("user", i%2), fmt.Sprint("msg ", i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("publish %d acked at seq %d", i, r.Seq)
		}
	}
	ga, gb := receive(t, sa, 1, 10), receive(t, sb, 1, 10)
	for i := range ga {
		if ga[i].Chain != gb[i].Chain || !bytes.Equal(ga[i].Envelope, gb[i].Envelope) {
			t.Fatalf("entry %d differs between subscribers", i+1)
		}
		pm, err := clients.ParsePlaintextEnvelope(ga[i].Envelope)
		if err != nil || pm.Text != fmt.Sprint("msg ", i) {
			t.Fatalf("entry %d: %+v %v", i+1, pm, err)
		}
	}
}

// A client whose node goes away reconnects when it is back and resumes its
// subscription from the last sequence it received: no gap, no duplicate;
// publishes acked before the restart are all there.
func TestClientResumesAcrossNodeRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Listen = freePort(t)
	n := startNode(t, cfg)
	ctx := context.Background()
	pub, subc := dialClient(t, cfg.Listen), dialClient(t, cfg.Listen)
	sub, err := subc.Subscribe(ctx, "resume", 1)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		for i := from; i <= to; i++ {
			r, err := pub.Publish(ctx, "resume", fmt.Appendf(nil, "m%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != uint64(i) {
				t.Fatalf("m%d acked at %d", i, r.Seq)
			}
		}
	}
	publish(1, 50)
	receive(t, sub, 1, 50)
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, cfg)
	defer n.close()
	publish(51, 100)
	got := receive(t, sub, 51, 50)
	for i, m := range got {
		if want := fmt.Sprintf("m%d", 51+i); string(m.Envelope) != want {
			t.Fatalf("seq %d is %q, want %q", m.Seq, m.Envelope, want)
		}
	}
	// Nothing more is pending: a fresh subscriber sees exactly 100.
	check, err := dialClient(t, cfg.Listen).Subscribe(ctx, "resume", 1)
	if err != nil {
		t.Fatal(err)
	}
	if check.Head() != 100 {
		t.Fatalf("log has %d entries after restart, want 100", check.Head())
	}
}

// 64 concurrent publishers on one operation get distinct, consecutive
// sequence numbers.
func TestConcurrentClientsGetConsecutiveSeqs(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	const publishers, each = 64, 10
	var mu sync.Mutex
	seqs := make(map[uint64]int)
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		c := dialClient(t, n.addr.String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := c.Publish(context.Background(), "busy", []byte("x"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqs[r.Seq]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for s := uint64(1); s <= publishers*each; s++ {
		if seqs[s] != 1 {
			t.Fatalf("seq %d acked %d times", s, seqs[s])
		}
	}
	if len(seqs) != publishers*each {
		t.Fatalf("%d distinct seqs, want %d", len(seqs), publishers*each)
	}
}

// BenchmarkPublishToAck measures end-to-end publish-to-ack throughput on one
// node: real client library, real WebSockets on loopback, real raft and
// bbolt with fsync, 1 KiB envelopes, one connection per publisher.
//
//	go test -run '^$' -bench PublishToAck -benchtime 20000x ./cmd/relayd
func BenchmarkPublishToAck(b *testing.B) {
	env := bytes.Repeat([]byte{0x5a}, 1024)
	for _, p := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishers=%d", p), func(b *testing.B) {
			n := startNode(b, testConfig(b, b.TempDir()))
			defer n.close()
			cs := make([]*clients.Client, p)
			for i := range cs {
				cs[i] = dialClient(b, n.addr.String())
			}
			per := (b.N + p - 1) / p
			start := n.cluster.Status()
			b.SetBytes(int64(len(env)))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if _, err := c.Publish(context.Background(), "bench", env); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			end := n.cluster.Status()
			b.ReportMetric(float64(per*p)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(end.Messages-start.Messages)/float64(max(end.Entries-start.Entries, 1)), "msgs/entry")
			for _, c := range cs {
				c.Close()
			}
		})
	}
}
