package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"liaison/clients"
)

// relaydNode is one relayd process.
type relaydNode struct {
	id     string
	listen string // client address
	raft   string
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
}

// liaisonCluster is three relayd processes on loopback.
type liaisonCluster struct {
	nodes []*relaydNode
	log   *slog.Logger
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		l.b.Reset() // keep the tail only
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildRelayd builds cmd/relayd (without -race) into dir.
func buildRelayd(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "relayd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/relayd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/relayd: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := string(bytes.TrimSpace(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the liaison module; run from the repository")
	}
	return filepath.Dir(mod), nil
}

// startLiaison starts three relayd nodes with --open-ops and no rate or
// per-address connection limits: n1 bootstraps on
// 127.0.0.1, n2 and n3 join it from 127.0.0.2 and 127.0.0.3.
func startLiaison(ctx context.Context, bin, dir string, extra []string, log *slog.Logger) (*liaisonCluster, error) {
	lc := &liaisonCluster{log: log}
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		listen, err := freeAddr(ip)
		if err != nil {
			lc.close()
			return nil, err
		}
		raft, err := freeAddr(ip)
		if err != nil {
			lc.close()
			return nil, err
		}
		n := &relaydNode{id: fmt.Sprintf("n%d", i+1), listen: listen, raft: raft, logs: &lockedBuffer{}, exited: make(chan struct{})}
		args := []string{"--node-id", n.id, "--data-dir", filepath.Join(dir, n.id), "--listen", listen,
			"--raft-listen", raft, "--open-ops", "--log-level", "warn",
			// Measure capacity, not the per-connection and per-address
			// limits (NATS has none by default).
			"--msg-rate", "-1", "--max-conns-per-addr", "-1"}
		if i > 0 {
			args = append(args, "--join", lc.nodes[0].listen)
		}
		args = append(args, extra...)
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
		if err := n.cmd.Start(); err != nil {
			lc.close()
			return nil, fmt.Errorf("start relayd %s: %w", n.id, err)
		}
		go func() { _ = n.cmd.Wait(); close(n.exited) }()
		lc.nodes = append(lc.nodes, n)
		if err := waitReady(ctx, n); err != nil {
			lc.close()
			return nil, err
		}
	}
	// Every node serves publishes once the cluster has three voters.
	for i := range lc.nodes {
		if err := lc.probe(ctx, i); err != nil {
			lc.close()
			return nil, err
		}
	}
	return lc, nil
}

func waitReady(ctx context.Context, n *relaydNode) error {
	hc := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := hc.Get("http://" + n.listen + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("relayd %s exited:\n%s", n.id, n.logs)
		case <-ctx.Done():
			return fmt.Errorf("relayd %s not ready: %w\n%s", n.id, ctx.Err(), n.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe publishes one message through node i.
func (lc *liaisonCluster) probe(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := lc.publisher(ctx, i, "probe")
	if err != nil {
		return err
	}
	defer p.Close()
	return p.publish(ctx, []byte("probe"))
}

func (lc *liaisonCluster) name() string { return sysLiaison }

func (lc *liaisonCluster) createStream(context.Context, string) error { return nil }

func (lc *liaisonCluster) dropStream(context.Context, string) error { return nil }

func (lc *liaisonCluster) dial(ctx context.Context, node int, o clients.Options) (*clients.Client, error) {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.ClientName = "bench"
	c, err := clients.Dial(ctx, []string{lc.nodes[node].listen}, o)
	if err != nil {
		return nil, fmt.Errorf("liaison node %d: %w", node+1, err)
	}
	return c, nil
}

type liaisonPublisher struct {
	c  *clients.Client
	op string
}

func (lc *liaisonCluster) publisher(ctx context.Context, node int, stream string) (publisher, error) {
	c, err := lc.dial(ctx, node, clients.Options{})
	if err != nil {
		return nil, err
	}
	return &liaisonPublisher{c: c, op: stream}, nil
}

func (p *liaisonPublisher) publish(ctx context.Context, payload []byte) error {
	_, err := p.c.Publish(ctx, p.op, payload)
	return err
}

func (p *liaisonPublisher) publishAsync(ctx context.Context, payload []byte, done func(error)) {
	go func() {
		_, err := p.c.Publish(ctx, p.op, payload)
		done(err)
	}()
}

func (p *liaisonPublisher) Close() error { return p.c.Close() }

func (lc *liaisonCluster) subscribe(ctx context.Context, node int, stream string, fn func([]byte)) (closer, error) {
	c, err := lc.dial(ctx, node, clients.Options{})
	if err != nil {
		return nil, err
	}
	s, err := c.Subscribe(ctx, stream, 1)
	if err != nil {
		c.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range s.Messages() {
			fn(m.Envelope)
		}
	}()
	return closerFunc(func() error {
		err := c.Close()
		<-done
		return err
	}), nil
}

func (lc *liaisonCluster) idleConns(ctx context.Context, node, n int) (closer, error) {
	conns := make([]*clients.Client, n)
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		d := sourceDialer(i, 4)
		c, err := lc.dial(ctx, node, clients.Options{NetDialContext: d.DialContext, IdleTimeout: time.Hour})
		conns[i] = c
		return err
	})
	cl := closerFunc(func() error {
		_ = parallel(context.Background(), n, 64, func(_ context.Context, i int) error {
			if conns[i] != nil {
				conns[i].Close()
			}
			return nil
		})
		return nil
	})
	if err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

func (lc *liaisonCluster) pid(node int) int { return lc.nodes[node].cmd.Process.Pid }

func (lc *liaisonCluster) close() error {
	for _, n := range lc.nodes {
		if n.cmd.Process != nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range lc.nodes {
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	return nil
}
