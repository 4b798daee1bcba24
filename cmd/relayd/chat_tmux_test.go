package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmuxPane is one `liaison chat` running in a tmux session of its own
// server (socket), so that tests never touch a user's tmux.
type tmuxPane struct {
	t    *testing.T
	bin  string
	sock string
}

// startTmux runs argv (with env added) in a new detached tmux session of
// width x height on a private server; the pane stays after the program
// exits. It skips the test when tmux is not installed.
func startTmux(t *testing.T, width, height int, env []string, argv ...string) *tmuxPane {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (apt-get install tmux): skipping the liaison chat smoke test")
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	p := &tmuxPane{t: t, bin: bin, sock: "liaison-test-" + hex.EncodeToString(rnd[:])}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g history-limit 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd strings.Builder
	cmd.WriteString("exec env")
	for _, kv := range env {
		cmd.WriteString(" " + shellQuote(kv))
	}
	for _, a := range argv {
		cmd.WriteString(" " + shellQuote(a))
	}
	p.tmux("-f", conf, "new-session", "-d", "-s", "chat", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), cmd.String())
	t.Cleanup(func() { exec.Command(p.bin, "-L", p.sock, "kill-server").Run() })
	return p
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.bin, append([]string{"-u", "-L", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen returns the pane's visible text.
func (p *tmuxPane) screen() string { return p.tmux("capture-pane", "-p", "-t", "chat") }

// keys sends keys (tmux key names, or literal text with -l).
func (p *tmuxPane) keys(keys ...string) {
	p.tmux(append([]string{"send-keys", "-t", "chat"}, keys...)...)
}

// typeLine types text literally, then Enter.
func (p *tmuxPane) typeLine(text string) {
	p.tmux("send-keys", "-t", "chat", "-l", text)
	p.keys("Enter")
}

// await polls the pane until cond holds: the chat is another program, so
// there is no event to wait on. It returns the screen.
func (p *tmuxPane) await(what string, cond func(screen string) bool) string {
	p.t.Helper()
	return p.awaitOr(what, cond, func() {})
}

// awaitOr is await, running diag before failing.
func (p *tmuxPane) awaitOr(what string, cond func(screen string) bool, diag func()) string {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		s := p.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			diag()
			p.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exited reports whether process pid has exited (gone, or a zombie).
func exited(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// diagnose makes the program in the pane print its goroutines (SIGQUIT)
// and logs the pane's scrollback.
func (p *tmuxPane) diagnose() {
	pid := strings.TrimSpace(p.tmux("list-panes", "-t", "chat", "-F", "#{pane_pid}"))
	if n, err := strconv.Atoi(pid); err == nil {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", n))
		p.t.Logf("process %d: stat %s wchan %s", n, st, wchan)
		syscall.Kill(n, syscall.SIGQUIT)
		time.Sleep(2 * time.Second) // let it print; diagnostics only
	}
	p.t.Logf("pane pid %s; scrollback:\n%s", pid, p.tmux("capture-pane", "-p", "-S", "-3000", "-t", "chat"))
}

func (p *tmuxPane) awaitText(subs ...string) string {
	p.t.Helper()
	return p.await(strings.Join(subs, " and "), func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	})
}

var connectedRE = regexp.MustCompile(`● connected to (n\d) \((127\.0\.0\.\d+:\d+)\)`)

// `liaison chat` in a real terminal (tmux) against a three-node cluster of
// relayd processes, people made with the CLI: the typed message shows with
// its sender and verified mark, another member's message from the CLI
// appears; then the node the chat is on is killed (SIGKILL): the indicator
// names another node, a message typed during the failover is sent once, and
// the history has no gap and no duplicate.
func TestChatTmuxSmokeAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes and liaison chat in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install tmux): skipping the liaison chat smoke test")
	}
	t0 := time.Now()
	nodes := startCluster(t, 3)
	t.Logf("cluster started in %v", time.Since(t0).Round(time.Millisecond))
	awaitOneLeader(t, nodes)
	relays := strings.Join(listens(nodes), ",")
	cli := liaisonBinary(t)
	aliceHome, bobHome := t.TempDir(), t.TempDir()
	env := func(home, relays string) []string {
		return []string{"LIAISON_HOME=" + home, "LIAISON_RELAY=" + relays, "LIAISON_PASSPHRASE=correct horse battery staple"}
	}
	run := func(home, relays string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), env(home, relays)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("liaison %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(aliceHome, relays, "id", "new", "--name", "Alice")
	run(bobHome, relays, "id", "new", "--name", "Bob")
	token := strings.TrimSpace(run(bobHome, relays, "id", "export"))
	run(aliceHome, relays, "op", "create", "night-watch")
	run(aliceHome, relays, "op", "add", "night-watch", token, "--role", "officer")

	start := time.Now()
	chatLog := filepath.Join(t.TempDir(), "chat.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(chatLog)
			t.Logf("chat log:\n%s", b)
		}
	})
	pane := startTmux(t, 140, 30, env(bobHome, relays), cli, "chat", "night-watch", "--log", chatLog)
	chatPID, err := strconv.Atoi(strings.TrimSpace(pane.tmux("list-panes", "-t", "chat", "-F", "#{pane_pid}")))
	if err != nil {
		t.Fatal(err)
	}
	s := pane.awaitText("* Alice added you (officer)", "● connected to n")
	t.Logf("chat up in %v", time.Since(start).Round(time.Millisecond))
	m := connectedRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no connection indicator:\n%s", s)
	}
	first := m[1]

	pane.typeLine("hello from bob")
	pane.awaitText("Bob (you) ✓ hello from bob")
	run(aliceHome, relays, "send", "night-watch", "copy that bob")
	pane.awaitText("Alice ✓ copy that bob")

	// A flash task from the centre's CLI: one key acknowledges it.
	sent := run(aliceHome, relays, "task", "send", "night-watch", "--priority", "flash", "close gate 4")
	f := strings.Fields(sent) // "task ID sent to ..."
	if len(f) < 2 || f[0] != "task" {
		t.Fatalf("task send printed %q", sent)
	}
	taskID := f[1]
	pane.awaitText("TASKS: 1 to acknowledge", "▲ FLASH     "+taskID+" night-watch  Alice✓: close gate 4")
	pane.keys("C-a")
	pane.awaitText("TASKS: 0 to acknowledge", "close gate 4  (understood)", "Bob (you) ✓ acknowledged task "+taskID+": understood")
	status := run(aliceHome, relays, "task", "status", "night-watch")
	if !regexp.MustCompile(`(?m)^\s+Bob\s+officer\s+\S+\s+understood`).MatchString(status) {
		t.Fatalf("task status does not show Bob's acknowledgement:\n%s", status)
	}

	// Kill the node the chat is on.
	var victim *procNode
	var alive []string
	for _, n := range nodes {
		if n.id == first {
			victim = n
		} else {
			alive = append(alive, n.listen)
		}
	}
	if victim == nil {
		t.Fatalf("chat on unknown node %q", first)
	}
	killed := time.Now()
	victim.kill()
	pane.typeLine("typed during the failover")
	s = pane.await("the chat on another node", func(s string) bool {
		m := connectedRE.FindStringSubmatch(s)
		return m != nil && m[1] != first
	})
	now := connectedRE.FindStringSubmatch(s)
	t.Logf("killed %s; chat on %s after %v", first, now[1], time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(strings.Join(alive, ","), now[2]) {
		t.Fatalf("indicator names %s at %s, not a live node %v", now[1], now[2], alive)
	}
	pane.awaitText("Bob (you) ✓ typed during the failover")
	run(aliceHome, strings.Join(alive, ","), "send", "night-watch", "after the failover")
	s = pane.awaitText("Alice ✓ after the failover")
	for _, text := range []string{"hello from bob", "copy that bob", "typed during the failover", "after the failover"} {
		if n := strings.Count(s, text); n != 1 {
			t.Fatalf("%q shown %d times:\n%s", text, n, s)
		}
	}
	if strings.Contains(s, "waiting for the relay") {
		t.Fatalf("outbox not empty:\n%s", s)
	}

	// Quit, and read Bob's history as the chat left it: sequences 1..N
	// without a gap, each message once.
	t.Logf("failover checked at %v", time.Since(t0).Round(time.Millisecond))
	pane.keys("C-c")
	// tmux on a loaded machine may leave the exited process a zombie for a
	// while without marking the pane dead: either counts as the exit.
	s = pane.awaitOr("the chat to exit", func(s string) bool { return strings.Contains(s, "Pane is dead") || exited(chatPID) }, pane.diagnose)
	if strings.Contains(s, "Pane is dead") && !strings.Contains(s, "Pane is dead (status 0") {
		t.Fatalf("the chat did not exit cleanly:\n%s", s)
	}
	if b, _ := os.ReadFile(chatLog); !strings.Contains(string(b), "engine stopped") || strings.Contains(string(b), "did not stop") {
		t.Fatalf("the chat did not stop cleanly; its log:\n%s", b)
	}
	out := run(bobHome, strings.Join(alive, ","), "read", "night-watch")
	var want uint64 = 1
	counts := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] == "!" {
			continue
		}
		seq, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("read line %q", line)
		}
		if seq != want {
			t.Fatalf("history jumps from %d to %d (gap or duplicate):\n%s", want-1, seq, out)
		}
		want++
		for _, text := range []string{"hello from bob", "copy that bob", "typed during the failover", "after the failover"} {
			if strings.HasSuffix(line, ": "+text) {
				counts[text]++
			}
		}
	}
	for _, text := range []string{"hello from bob", "copy that bob", "typed during the failover", "after the failover"} {
		if counts[text] != 1 {
			t.Fatalf("%q %d times in the history:\n%s", text, counts[text], out)
		}
	}
}
