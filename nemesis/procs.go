package nemesis

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"liaison/cluster"
	"liaison/crypto"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildRelayd builds relayd once per process with the race detector (so a
// data race a fault provokes shows in the node's log) and returns the
// binary's path.
func BuildRelayd() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nemesis-relayd")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "relayd")
		out, err := exec.Command("go", "build", "-race", "-o", buildPath, "liaison/cmd/relayd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build relayd: %v\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// Node is one relayd process of a nemesis cluster and everything needed to
// restart it. Clients and other nodes reach it only through its proxies.
type Node struct {
	ID      string
	IP      string
	DataDir string
	Listen  string // client address (direct: the harness's own reads)
	Raft    string // Raft listener (direct: only its proxy dials it)

	RaftProxy   *Proxy // what the other nodes dial (--advertise)
	ClientProxy *Proxy // what the workload's clients dial

	bin     string
	logFile string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	expect  bool // the harness stopped it; an exit is not a crash
	paused  bool
	logTail *bytes.Buffer
	starts  int
	crashes []string
}

// args returns the node's command line. join is empty for the first node.
func (n *Node) args(join string, extra []string) []string {
	a := []string{"--node-id", n.ID, "--data-dir", n.DataDir, "--listen", n.Listen, "--raft-listen", n.Raft,
		"--advertise", n.RaftProxy.Addr(), "--raft-source", n.IP, "--open-ops", "--log-level", "info"}
	if join != "" {
		a = append(a, "--join", join)
	}
	return append(a, extra...)
}

// Start runs the process (it must not be running).
func (n *Node) Start(join string, extra ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is running", n.ID)
	}
	f, err := os.OpenFile(n.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== start %d at %s\n", n.starts+1, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, n.args(join, extra)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		f.Close()
		return err
	}
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	n.starts++
	n.cmd, n.expect, n.paused = cmd, false, false
	exited := make(chan struct{})
	n.exited = exited
	tail := new(bytes.Buffer)
	n.logTail = tail
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			n.mu.Lock()
			if tail.Len() > 256<<10 {
				tail.Reset()
			}
			tail.WriteString(line + "\n")
			n.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		err := cmd.Wait()
		n.mu.Lock()
		if !n.expect {
			n.crashes = append(n.crashes, fmt.Sprintf("%s exited on its own (%v); log %s", n.ID, err, n.logFile))
		}
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		f.Close()
		close(exited)
	}()
	return nil
}

// Running reports whether the process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Signal sends sig; SIGKILL and SIGTERM also wait for the exit.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	if cmd == nil {
		n.mu.Unlock()
		return fmt.Errorf("%s is not running", n.ID)
	}
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM:
		n.expect = true
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	n.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		if sig == syscall.SIGTERM {
			// A paused process cannot act on SIGTERM.
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return fmt.Errorf("%s did not exit on %v; killed", n.ID, sig)
		}
	}
	return nil
}

// Kill stops the process with SIGKILL if it runs.
func (n *Node) Kill() {
	if n.Running() {
		_ = n.Signal(syscall.SIGKILL)
	}
}

// Paused reports whether the harness has stopped the process with SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// Exited is closed when the current process exits.
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exited
}

// Log returns the tail of the current process's log.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.logTail == nil {
		return ""
	}
	return n.logTail.String()
}

// LogFile is the node's full log, across restarts.
func (n *Node) LogFile() string { return n.logFile }

// Crashes lists the exits the harness did not cause.
func (n *Node) Crashes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.crashes...)
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// NodeStatus is what a node's /cluster/status answers.
type NodeStatus = cluster.StatusReport

// Status reads the node's /cluster/status directly (not through a proxy).
func (n *Node) Status(ctx context.Context) (NodeStatus, error) {
	var st NodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Listen+"/cluster/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: status %s", n.ID, resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	return st, err
}

// Ready reports whether /readyz answers 200.
func (n *Node) Ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Listen+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// adminIdentity signs the harness's cluster changes. The clusters it
// starts have no admin list, so any valid signature is accepted (and
// audited).
var adminIdentity = sync.OnceValues(func() (*crypto.Identity, error) {
	return crypto.NewIdentity(rand.Reader, "nemesis")
})

// admin posts a cluster change (crypto.AdminActionJoin or ...Remove, with
// its arguments as the JSON body) to this node's /cluster/ API, signed as
// cluster changes must be.
func (n *Node) admin(ctx context.Context, action string, args map[string]string) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.Listen+"/cluster/"+action, bytes.NewReader(b))
	if err != nil {
		return err
	}
	id, err := adminIdentity()
	if err != nil {
		return err
	}
	ar, err := crypto.NewAdminRequest(rand.Reader, id, action, n.ID, time.Now().UnixMilli(), args)
	if err != nil {
		return err
	}
	req.Header.Set(cluster.AdminRequestHeader, base64.RawURLEncoding.EncodeToString(ar.Encode()))
	hc := http.Client{Timeout: 60 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s /cluster/%s: %s: %s", n.ID, action, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// waitFor polls cond every 50 ms until it holds or ctx ends: the nodes are
// other processes, so there is no event to await.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

var errNoLeader = errors.New("no leader")
