package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	natsUser     = "bench"
	natsPassword = "bench-password"
	natsInstall  = "go install github.com/nats-io/nats-server/v2@v2.15.2"
)

// findNatsServer looks for the nats-server binary.
func findNatsServer(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := os.Getenv("NATS_SERVER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin, err := exec.Command("go", "env", "GOBIN").Output(); err == nil && strings.TrimSpace(string(gobin)) != "" {
		dirs = append(dirs, strings.TrimSpace(string(gobin)))
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "nats-server")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("nats-server not found (looked in $NATS_SERVER, $PATH and %s); install it with:\n\t%s", strings.Join(dirs, ", "), natsInstall)
}

type natsNode struct {
	name    string
	client  string // host:port
	ws      string // host:port of the WebSocket listener
	cmd     *exec.Cmd
	logs    *lockedBuffer
	exited  chan struct{}
	cluster string
}

// natsCluster is three nats-server processes with JetStream.
type natsCluster struct {
	sysName string
	nodes   []*natsNode
	log     *slog.Logger
	admin   *nats.Conn
	js      jetstream.JetStream
}

// startNats starts three clustered nats-server nodes with JetStream (file
// storage under dir); syncAlways sets sync_interval: always.
func startNats(ctx context.Context, bin, dir string, syncAlways bool, log *slog.Logger) (*natsCluster, error) {
	nc := &natsCluster{sysName: sysJSDefault, log: log}
	if syncAlways {
		nc.sysName = sysJSAlways
	}
	for i := 0; i < 3; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		n := &natsNode{name: fmt.Sprintf("s%d", i+1), logs: &lockedBuffer{}, exited: make(chan struct{})}
		var err error
		for _, p := range []*string{&n.client, &n.ws, &n.cluster} {
			if *p, err = freeAddr(ip); err != nil {
				return nil, err
			}
		}
		nc.nodes = append(nc.nodes, n)
	}
	var routes []string
	for _, n := range nc.nodes {
		routes = append(routes, "nats-route://"+n.cluster)
	}
	for _, n := range nc.nodes {
		sync := ""
		if syncAlways {
			sync = "\n  sync_interval: always"
		}
		conf := fmt.Sprintf(`server_name: %s
listen: %q
authorization { user: %q, password: %q }
jetstream {
  store_dir: %q%s
}
cluster {
  name: bench
  listen: %q
  routes: [%s]
}
websocket {
  listen: %q
  no_tls: true
}
`, n.name, n.client, natsUser, natsPassword, filepath.Join(dir, n.name), sync, n.cluster, strings.Join(routes, ", "), n.ws)
		path := filepath.Join(dir, n.name+".conf")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		n.cmd = exec.Command(bin, "-c", path)
		n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
		if err := n.cmd.Start(); err != nil {
			nc.close()
			return nil, fmt.Errorf("start nats-server %s: %w", n.name, err)
		}
		go func() { _ = n.cmd.Wait(); close(n.exited) }()
	}
	var err error
	nc.admin, err = nc.connect(ctx, 0)
	if err != nil {
		nc.close()
		return nil, err
	}
	if nc.js, err = jetstream.New(nc.admin); err != nil {
		nc.close()
		return nil, err
	}
	// JetStream is up once a three-replica stream can be created and
	// written through every node.
	if err := nc.createStream(ctx, "probe"); err != nil {
		nc.close()
		return nil, err
	}
	for i := range nc.nodes {
		p, err := nc.publisher(ctx, i, "probe")
		if err != nil {
			nc.close()
			return nil, err
		}
		err = p.publish(ctx, []byte("probe"))
		p.Close()
		if err != nil {
			nc.close()
			return nil, fmt.Errorf("probe through %s: %w", nc.nodes[i].name, err)
		}
	}
	return nc, nil
}

func (nc *natsCluster) connect(ctx context.Context, node int, extra ...nats.Option) (*nats.Conn, error) {
	n := nc.nodes[node]
	opts := append([]nats.Option{nats.UserInfo(natsUser, natsPassword), nats.Name("bench")}, extra...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := nats.Connect("nats://"+n.client, opts...)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w\n%s", n.name, err, n.logs)
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("nats-server %s exited:\n%s", n.name, n.logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (nc *natsCluster) name() string { return nc.sysName }

func natsSubject(stream string) string { return "bench." + stream }

func (nc *natsCluster) createStream(ctx context.Context, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := nc.js.CreateStream(actx, jetstream.StreamConfig{
			Name: stream, Subjects: []string{natsSubject(stream)},
			Storage: jetstream.FileStorage, Replicas: 3,
		})
		acancel()
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create stream %s: %w\nnode s1 log tail:\n%s", stream, err, tail(nc.nodes[0].logs.String(), 3000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (nc *natsCluster) dropStream(ctx context.Context, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := nc.js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", stream, err)
	}
	return nil
}

type natsPublisher struct {
	c    *nats.Conn
	js   jetstream.JetStream
	subj string
}

func (nc *natsCluster) publisher(ctx context.Context, node int, stream string) (publisher, error) {
	c, err := nc.connect(ctx, node)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &natsPublisher{c: c, js: js, subj: natsSubject(stream)}, nil
}

func (p *natsPublisher) publish(ctx context.Context, payload []byte) error {
	_, err := p.js.Publish(ctx, p.subj, payload)
	return err
}

func (p *natsPublisher) publishAsync(ctx context.Context, payload []byte, done func(error)) {
	var f jetstream.PubAckFuture
	for {
		var err error
		f, err = p.js.PublishAsync(p.subj, payload)
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
			done(err)
			return
		}
		// At the client's limit of outstanding publishes: wait, as the
		// Liaison client blocks at its in-flight limit.
		time.Sleep(time.Millisecond)
	}
	go func() {
		select {
		case <-f.Ok():
			done(nil)
		case err := <-f.Err():
			done(err)
		case <-ctx.Done():
			done(ctx.Err())
		}
	}()
}

func (p *natsPublisher) Close() error { p.c.Close(); return nil }

func (nc *natsCluster) subscribe(ctx context.Context, node int, stream string, fn func([]byte)) (closer, error) {
	c, err := nc.connect(ctx, node)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ordered consumer on %s: %w", stream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { fn(m.Data()) })
	if err != nil {
		c.Close()
		return nil, err
	}
	return closerFunc(func() error {
		cc.Stop()
		c.Close()
		return nil
	}), nil
}

func (nc *natsCluster) idleConns(ctx context.Context, node, n int) (closer, error) {
	conns := make([]*nats.Conn, n)
	url := "ws://" + nc.nodes[node].ws
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		c, err := nats.Connect(url, nats.UserInfo(natsUser, natsPassword), nats.SetCustomDialer(sourceDialer(i, 4)),
			nats.NoReconnect(), nats.PingInterval(time.Hour))
		conns[i] = c
		if err != nil {
			return fmt.Errorf("websocket connection %d to %s: %w", i, nc.nodes[node].name, err)
		}
		return nil
	})
	cl := closerFunc(func() error {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil
	})
	if err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

func (nc *natsCluster) pid(node int) int { return nc.nodes[node].cmd.Process.Pid }

func (nc *natsCluster) close() error {
	if nc.admin != nil {
		nc.admin.Close()
	}
	for _, n := range nc.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range nc.nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
