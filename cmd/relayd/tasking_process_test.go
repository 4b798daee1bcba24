package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"liaison/clients/session"
	"liaison/crypto"
)

// officersBinary builds testdata/officers (without the race detector: the
// officers' cryptography is not what the test examines) once per run.
var officersBinary = buildOnce("officers", "./testdata/officers")

// officersProc is a running testdata/officers process.
type officersProc struct {
	t      *testing.T
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *safeBuffer
}

// await reads lines until want, failing on end of output.
func (p *officersProc) await(want string) []string {
	p.t.Helper()
	var lines []string
	for p.out.Scan() {
		if p.out.Text() == want {
			return lines
		}
		lines = append(lines, p.out.Text())
	}
	p.t.Fatalf("officers ended before %q: %v\n%s", want, p.out.Err(), p.stderr.String())
	return nil
}

func (p *officersProc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// The tasking round of issue 5 on a cluster of three relayd processes
// (built with -race): 200 officers, a third connected to each node, in one
// officers process; a centre member creates the operation with them
// (in-process session API), sends a flash task with the liaison CLI, every
// officer acknowledges (received, understood, done or unable, in turn), and
// `liaison task status` shows every acknowledgement. The presence table
// gathered across the three nodes lists every officer's connection with
// the task delivered to it. TASKING_OFFICERS changes the count.
func TestTaskingRound200OfficersThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	n := 200
	if v := os.Getenv("TASKING_OFFICERS"); v != "" {
		fmt.Sscan(v, &n)
	}
	bin := officersBinary(t)
	cli := liaisonBinary(t)
	nodes := startCluster(t, 3)
	all := listens(nodes)
	awaitOneLeader(t, nodes)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const op = "joint-action-day"

	// The officers' process prints their tokens.
	args := []string{"--relays", strings.Join(all, ","), "--op", op, "--n", fmt.Sprint(n), "--home", t.TempDir()}
	if f := os.Getenv("TASKING_CPUPROFILE"); f != "" {
		args = append(args, "--cpuprofile", f) // the officers' CPU profile
	}
	cmd := exec.Command(bin, args...)
	stderr := new(safeBuffer)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // EOF: the officers close their connections and exit
		kill := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		defer kill.Stop()
		if err := cmd.Wait(); err != nil && !t.Failed() {
			t.Errorf("officers: %v\n%s", err, stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	offs := &officersProc{t: t, in: stdin, out: sc, stderr: stderr}
	var names []string
	var invites []crypto.Invite
	for _, l := range offs.await("tokens") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "token" {
			t.Fatalf("officers said %q", l)
		}
		tok, err := crypto.ParseTokenString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, f[1])
		invites = append(invites, crypto.Invite{Token: tok, Role: crypto.RoleOfficer})
	}
	if len(invites) != n {
		t.Fatalf("%d tokens", len(invites))
	}

	// The centre: an identity file (cheap KDF, so the CLI opens it fast)
	// used by an in-process session and the CLI over the same home.
	home := t.TempDir()
	pass := "correct horse battery staple"
	centreID, err := session.CreateIdentityFile(filepath.Join(home, "identity"), "Centre", []byte(pass), crypto.KDFParams{Time: 1, Memory: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	centre := session.New(home, centreID, dialClientAs(t, nil, centreID, all...), session.Options{KeyUpdateAfter: -1})
	if _, err := centre.CreateOp(ctx, op, invites); err != nil {
		t.Fatal(err)
	}
	t.Logf("operation with %d officers created after %v", n, time.Since(start).Round(time.Millisecond))
	offs.send("join")
	offs.await("joined")
	t.Logf("officers joined after %v", time.Since(start).Round(time.Millisecond))

	runCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), "LIAISON_HOME="+home, "LIAISON_IDENTITY=", "LIAISON_RELAY="+strings.Join(all, ","),
			"LIAISON_PASSPHRASE="+pass, "LIAISON_KEY_UPDATE_AFTER=-1s")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("liaison %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := runCLI("task", "send", op, "--priority", "flash", "--due", "2h", "Close checkpoint Bravo and report")
	m := regexp.MustCompile(`task ([0-9a-f]{8}) sent to ` + op + ` seq (\d+) \(flash\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("task send: %q", out)
	}
	offs.send("ack " + m[1])
	cpu := offs.await("acked")
	t.Logf("%d acknowledgements after %v (officers process: %s)", n, time.Since(start).Round(time.Millisecond), strings.Join(cpu, " "))

	// The session API the CLI uses shows every acknowledgement once the
	// centre's node has applied them all (acknowledgements published
	// through other nodes reach it within a heartbeat), with every task
	// delivered and nobody overdue.
	var tasks []session.TaskStatus
	waitUntil(t, 30*time.Second, func() bool {
		var err error
		if tasks, err = centre.TaskStatus(ctx, op); err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 {
			return false
		}
		_, a, _ := tasks[0].Counts()
		return a == n
	})
	if d, a, o := tasks[0].Counts(); d != n || a != n || o != 0 {
		t.Fatalf("delivered %d acknowledged %d overdue %d, want %d %d 0", d, a, o, n, n)
	}
	// So does the CLI's status table (same node first in its list).
	out = runCLI("task", "status", op)
	if !strings.Contains(out, fmt.Sprintf("delivered %d/%d  acknowledged %d/%d  overdue 0", n, n, n, n)) {
		t.Fatalf("status does not count every acknowledgement:\n%s", out)
	}
	states := []session.AckState{session.AckReceived, session.AckUnderstood, session.AckDone, session.AckUnable}
	for i, name := range names {
		row := regexp.MustCompile(`(?m)^  ` + name + ` +officer +yes +` + states[i%4].String() + ` +\d\d:\d\d:\d\d +note ` + fmt.Sprint(i) + `$`)
		if !row.MatchString(out) {
			t.Fatalf("status lacks %s's row (%s):\n%s", name, states[i%4], out)
		}
	}

	// Presence across the three nodes: every officer, by its authenticated
	// identity, connected with the task's sequence written to it (reports
	// from the other nodes arrive within a gossip interval).
	var taskSeq uint64
	fmt.Sscan(m[2], &taskSeq)
	officerKeys := map[[32]byte]bool{}
	for _, in := range invites {
		officerKeys[in.Token.SigningKey] = true
	}
	perNode := map[string]int{}
	waitUntil(t, 30*time.Second, func() bool {
		p, err := centre.Presence(ctx, op)
		if err != nil {
			return false
		}
		clear(perNode)
		seen := map[[32]byte]bool{}
		for _, e := range p.Entries {
			if e.Connected && e.Delivered >= taskSeq && officerKeys[e.Member] && !seen[e.Member] {
				seen[e.Member] = true
				perNode[e.Node]++
			}
		}
		return len(seen) == n && len(perNode) == 3
	})
	t.Logf("connections with the task delivered, per node: %v", perNode)
	var relayCPU []string
	for _, nd := range nodes {
		relayCPU = append(relayCPU, procCPU(nd.cmd.Process.Pid))
	}
	t.Logf("tasking round with %d officers on 3 nodes: %v (relayd CPU %s)", n, time.Since(start).Round(time.Millisecond), strings.Join(relayCPU, ", "))
	offs.send("quit")
}

// procCPU returns a process's CPU time (user+system) from /proc, or "?".
func procCPU(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "?"
	}
	// Fields after the command name (which ends with ')'): utime is the
	// 12th, stime the 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return "?"
	}
	var u, s float64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &s)
	return fmt.Sprintf("%.1fs", (u+s)/100)
}
