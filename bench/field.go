package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

// shaper is a TCP proxy that gives every connection through it a link of
// bps bits/s each way and a round trip of rtt (half of it each way), with
// the queue a real link has: bytes wait their turn on the wire, then the
// one-way delay, in order.
type shaper struct {
	ln         net.Listener
	target     string
	bps        int
	oneWay     time.Duration
	up, down   atomic.Int64 // bytes client->server, server->client
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      []net.Conn
	closedOnce sync.Once
}

func newShaper(target string, bps int, rtt time.Duration) (*shaper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &shaper{ln: ln, target: target, bps: bps, oneWay: rtt / 2}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *shaper) addr() string { return s.ln.Addr().String() }

func (s *shaper) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", s.target)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, c, u)
		s.mu.Unlock()
		s.wg.Add(2)
		go s.pipe(c, u, &s.up)
		go s.pipe(u, c, &s.down)
	}
}

type chunk struct {
	b  []byte
	at time.Time // when it may be written to the far side
}

// pipe shapes one direction: a reader stamps each chunk with the time its
// last bit leaves the (serialised) link plus the one-way delay; a writer
// hands it on at that time.
func (s *shaper) pipe(src, dst net.Conn, count *atomic.Int64) {
	defer s.wg.Done()
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		var linkFree time.Time
		for {
			b := make([]byte, 1448) // one TCP segment's payload
			n, err := src.Read(b)
			if n > 0 {
				now := time.Now()
				start := linkFree
				if now.After(start) {
					start = now
				}
				linkFree = start.Add(time.Duration(int64(n) * 8 * int64(time.Second) / int64(s.bps)))
				q <- chunk{b: b[:n], at: linkFree.Add(s.oneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			break
		}
		count.Add(int64(len(c.b)))
	}
	src.Close()
	dst.Close()
	for range q { // let the reader finish
	}
}

func (s *shaper) Close() error {
	s.closedOnce.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

type fieldResult struct {
	seconds     float64 // dial to last message decrypted
	floor       float64 // the link's time for the plaintext alone
	utilisation float64 // downstream bits / (seconds * link rate)
	bytesPerMsg float64 // both directions
	downPerMsg  float64
}

// measureField has Alice send cfg.fieldMsgs end-to-end encrypted 512 B
// messages while Bob is offline; then Bob, behind the shaping proxy in front
// of node 2, connects, catches up and decrypts them all.
func measureField(ctx context.Context, lc *liaisonCluster, cfg config) (fieldResult, error) {
	dir, err := os.MkdirTemp("", "liaison-field-")
	if err != nil {
		return fieldResult{}, err
	}
	defer os.RemoveAll(dir)
	alice, err := crypto.NewIdentity(rand.Reader, "alice")
	if err != nil {
		return fieldResult{}, err
	}
	bob, err := crypto.NewIdentity(rand.Reader, "bob")
	if err != nil {
		return fieldResult{}, err
	}
	if err := sendField(ctx, lc, alice, bob, cfg.fieldMsgs); err != nil {
		return fieldResult{}, err
	}
	text := strings.Repeat("x", 512)
	const op = "field"

	sh, err := newShaper(lc.nodes[1].listen, cfg.linkBPS, cfg.linkRTT)
	if err != nil {
		return fieldResult{}, err
	}
	defer sh.Close()
	start := time.Now()
	bc, err := clients.Dial(ctx, []string{sh.addr()}, clients.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ClientName: "bench-field", DialTimeout: time.Minute, Identity: bob,
	})
	if err != nil {
		return fieldResult{}, fmt.Errorf("dial through the shaper: %w", err)
	}
	defer bc.Close()
	bs := session.New(filepath.Join(dir, "bob"), bob, bc, session.Options{KeyUpdateAfter: -1})
	entries, err := bs.Sync(ctx, op)
	if err != nil {
		return fieldResult{}, fmt.Errorf("bob's sync: %w", err)
	}
	secs := time.Since(start).Seconds()
	got := 0
	for _, e := range entries {
		if e.Kind == session.EntryMessage && e.Type == session.TypeChat && e.Text == text {
			got++
		}
	}
	if got != cfg.fieldMsgs {
		return fieldResult{}, fmt.Errorf("bob decrypted %d of %d messages (%d entries)", got, cfg.fieldMsgs, len(entries))
	}
	up, down := sh.up.Load(), sh.down.Load()
	n := float64(cfg.fieldMsgs)
	return fieldResult{
		seconds:     secs,
		floor:       n * 512 * 8 / float64(cfg.linkBPS),
		utilisation: float64(down) * 8 / float64(cfg.linkBPS) / secs,
		bytesPerMsg: float64(up+down) / n,
		downPerMsg:  float64(down) / n,
	}, nil
}

// sendField creates operation "field" with Alice and Bob as members and has
// Alice send n end-to-end encrypted chat messages of 512 B. Alice uses the
// crypto package directly (a session saves its state around every message,
// which would make this setup, not the catch-up, the long part); each
// envelope names the genesis as the log head Alice had seen. Publishes are
// pipelined, at most 64 in flight, well inside crypto.MaxSkip.
func sendField(ctx context.Context, lc *liaisonCluster, alice, bob *crypto.Identity, n int) error {
	ac, err := lc.dial(ctx, 0, clients.Options{Identity: alice})
	if err != nil {
		return err
	}
	defer ac.Close()
	const op = "field"
	g, genesis, err := crypto.NewGroup(rand.Reader, alice, op, []crypto.Invite{{Token: bob.Token(), Role: crypto.RoleOfficer}})
	if err != nil {
		return err
	}
	defer g.Destroy()
	r, err := ac.Publish(ctx, op, genesis, clients.WithKind(wire.KindCommit))
	if err != nil {
		return fmt.Errorf("publish the genesis commit: %w", err)
	}
	head := crypto.NewLogHead(r.Seq, crypto.LogChain([32]byte{}, r.Seq, genesis))
	text := strings.Repeat("x", 512)
	t0 := time.Now()
	sem := make(chan struct{}, 64)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		payload, err := session.EncodePayload(session.Payload{V: session.PayloadVersion, Type: session.TypeChat, TimeMS: time.Now().UnixMilli(), Text: text})
		if err != nil {
			return err
		}
		env, err := g.Seal(payload, head)
		if err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		case err := <-errc:
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := ac.Publish(ctx, op, env); err != nil {
				select {
				case errc <- fmt.Errorf("publish message: %w", err):
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	slog.Default().Debug("field messages sent", "n", n, "took", time.Since(t0))
	return nil
}
