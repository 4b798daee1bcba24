package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/cluster/pki"
	"liaison/crypto"
	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// relaydBinary builds relayd (with the race detector) once per test run.
var relaydBinary = buildOnce("relayd", ".", "-race")

// proc is a relayd process on loopback.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	listen string
	scheme string
	http   *http.Client
	logs   *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{}
}

func startProc(t testing.TB, dataDir, listen, raftListen string) *proc {
	t.Helper()
	return startProcArgs(t, dataDir, listen, raftListen, "n1")
}

func startProcArgs(t testing.TB, dataDir, listen, raftListen, id string, extra ...string) *proc {
	t.Helper()
	return startProcArgsTLS(t, dataDir, listen, raftListen, id, "", extra...)
}

// startProcArgsTLS starts relayd; with caFile set, its client listener is
// expected to serve TLS with certificates of that CA.
func startProcArgsTLS(t testing.TB, dataDir, listen, raftListen, id, caFile string, extra ...string) *proc {
	t.Helper()
	scheme, hc := "http", &http.Client{Timeout: 2 * time.Second}
	if caFile != "" {
		tc, err := pki.LoadClientTLS(caFile, "", "")
		if err != nil {
			t.Fatal(err)
		}
		scheme, hc.Transport = "https", &http.Transport{TLSClientConfig: tc}
	}
	args := append([]string{"--data-dir", dataDir, "--listen", listen, "--raft-listen", raftListen, "--node-id", id}, extra...)
	cmd := exec.Command(relaydBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, listen: listen, scheme: scheme, http: hc, logs: new(bytes.Buffer), mu: new(sync.Mutex), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	p.waitReady()
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitReady polls /readyz: the process is another program, so there is no
// in-process event to await.
func (p *proc) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("relayd exited during start:\n%s", p.log())
		default:
		}
		resp, err := p.http.Get(p.scheme + "://" + p.listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("relayd not ready after 30 s:\n%s", p.log())
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

func (p *proc) signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("relayd did not exit on %v", sig)
	}
}

// dialAddr connects to the node at addr and authenticates with a fresh
// identity.
func dialAddr(t testing.TB, addr string) (*rawConn, error) {
	return dialAddrAs(t, addr, nil)
}

// dialAddrAs connects to the node at addr and authenticates as id (fresh
// when nil).
func dialAddrAs(t testing.TB, addr string, id *crypto.Identity) (*rawConn, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, err
	}
	if _, err := relaytest.Handshake(ws, id); err != nil {
		ws.Close()
		return nil, err
	}
	return &rawConn{t: t, ws: ws}, nil
}

// A relayd process killed with SIGKILL while publishes stream in has, after
// a restart, every publish it acknowledged, at the acknowledged sequence,
// exactly once; publishes it did not acknowledge are there at most once.
func TestKill9MidStreamLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relayd processes")
	}
	dir := t.TempDir()
	listen, raftListen := freePort(t), freePort(t)
	p := startProcArgs(t, dir, listen, raftListen, "n1", "--open-ops")
	c, err := dialAddr(t, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.Close()

	const total = 5000
	acked := make(map[uint64]string) // seq -> envelope
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			f, err := c.tryRead()
			if err != nil {
				return
			}
			if a, ok := f.(*wire.Ack); ok {
				mu.Lock()
				acked[a.Seq] = fmt.Sprintf("m%d", a.Req)
				n := len(acked)
				mu.Unlock()
				if n == total/4 {
					// Kill while three quarters are still in flight.
					p.kill()
				}
			}
		}
	}()
	for i := 1; i <= total; i++ {
		if err := sendFrame(c.ws, &wire.Publish{Req: uint64(i), Op: "k9", MsgID: newMsgID(), Envelope: fmt.Appendf(nil, "m%d", i)}); err != nil {
			break
		}
	}
	<-readDone
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked < total/4 {
		t.Fatalf("only %d acks before the kill", nAcked)
	}

	p = startProcArgs(t, dir, listen, raftListen, "n1", "--open-ops")
	c2, err := dialAddr(t, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.ws.Close()
	sub := c2.subscribe("k9", 1)
	if sub.Head < uint64(nAcked) {
		t.Fatalf("after restart the log has %d entries, %d were acked", sub.Head, nAcked)
	}
	got := c2.collect("k9", 1, sub.Head)
	seen := make(map[string]bool)
	for i, e := range got {
		if seen[string(e)] {
			t.Fatalf("%s stored twice", e)
		}
		seen[string(e)] = true
		if want, ok := acked[uint64(i+1)]; ok && want != string(e) {
			t.Fatalf("seq %d holds %s, but %s was acked at it", i+1, e, want)
		}
	}
	for seq, env := range acked {
		if !seen[env] {
			t.Fatalf("acked %s (seq %d) lost", env, seq)
		}
	}
	t.Logf("%d acked before SIGKILL, %d in the log after restart", nAcked, len(got))
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.log(), "stopped") {
		t.Fatalf("no clean stop on SIGTERM:\n%s", p.log())
	}
}

// The default command works in an empty folder: one-node cluster, data in
// ./liaison-data, clients on 127.0.0.1:7400.
func TestDefaultsInEmptyFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs relayd processes")
	}
	if l, err := net.Listen("tcp", "127.0.0.1:7400"); err != nil {
		t.Skipf("127.0.0.1:7400 is in use here (%v); the default address cannot be tested", err)
	} else {
		l.Close()
	}
	dir := t.TempDir()
	cmd := exec.Command(relaydBinary(t))
	cmd.Dir = dir
	var logs safeBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://127.0.0.1:7400/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			t.Fatalf("not ready:\n%s", logs.String())
		case err := <-done:
			t.Fatalf("exited: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, f := range []string{"liaison-data/fsm.db", "liaison-data/raft/raft.db", "liaison-data/node-id"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if !strings.Contains(logs.String(), "ws://127.0.0.1:7400/ws") {
		t.Errorf("the log does not say where it listens:\n%s", logs.String())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no exit after SIGINT")
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*safeBuffer)(nil)

// A backup fetched from a running node starts a new cluster with
// `relayd --restore FILE` that serves every acknowledged message.
func TestBackupRestoreProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes")
	}
	listen := freePort(t)
	ops := newPerson(t, "ops")
	startProcArgs(t, t.TempDir(), listen, freePort(t), "n1", "--admin", crypto.AdminKeyHex(ops.id.PublicKey()), "--open-ops")
	c := dialClient(t, listen)
	ctx := context.Background()
	for i := 1; i <= 25; i++ {
		if _, err := c.Publish(ctx, "backed-up", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := getBackup(t, listen, signedHeader(t, ops.id, crypto.AdminActionBackup, "n1", nil))
	file := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("backup: status %d, %d bytes", resp.StatusCode, len(body))
	}

	listen2 := freePort(t)
	startProcArgs(t, t.TempDir(), listen2, freePort(t), "r1", "--restore", file, "--open-ops")
	s, err := dialClient(t, listen2).Subscribe(ctx, "backed-up", 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Head() != 25 {
		t.Fatalf("restored cluster has %d entries, want 25", s.Head())
	}
	// The restored cluster keeps the admin list and the audit trail (the
	// backup itself is in it), and continues the chain.
	if rep := adminsOf(t, listen2); len(rep.Admins) != 1 || rep.Admins[0].Name != "admin-"+crypto.AdminKeyHex(ops.id.PublicKey())[:8] {
		t.Fatalf("restored admins: %+v", rep)
	}
	if resp, _ := getBackup(t, listen2, signedHeader(t, ops.id, crypto.AdminActionBackup, "r1", nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("backup of the restored cluster: %s", resp.Status)
	}
	if out, err := cliAs(t, nil, "--relay", listen2, "admin", "audit"); err != nil || strings.Count(out, " backup ") != 2 {
		t.Fatalf("restored audit trail: %v\n%s", err, out)
	}
	for i, m := range receive(t, s, 1, 25) {
		if want := fmt.Sprintf("m%d", i+1); string(m.Envelope) != want {
			t.Fatalf("seq %d = %q, want %q", m.Seq, m.Envelope, want)
		}
	}
}
