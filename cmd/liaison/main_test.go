package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"liaison/clients/fakerelay"
	"liaison/crypto"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) {
	kdfParams = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}
	goleak.VerifyTestMain(m)
}

func runT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runT(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstdout %s\nstderr %s", args, code, out, errs)
	}
	return out
}

func newServer(t *testing.T) *fakerelay.Server {
	s := fakerelay.New("n1")
	t.Cleanup(s.Close)
	return s
}

func setEnv(t *testing.T, srv *fakerelay.Server) {
	t.Setenv("LIAISON_PASSPHRASE", "correct horse")
	t.Setenv("LIAISON_RELAY", srv.Addr)
	t.Setenv("LIAISON_HOME", t.TempDir())
	t.Setenv("LIAISON_IDENTITY", "")
	t.Setenv("LIAISON_KEY_UPDATE_AFTER", "")
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, _ := runT(t, args...)
		if code != 0 || !strings.Contains(out, "send NAME TEXT") || !strings.Contains(out, "read NAME") || !strings.Contains(out, "op create NAME") {
			t.Fatalf("%v: code %d, out %q", args, code, out)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"send"}, {"send", "op"}, {"read"}, {"send", "--priority", "urgent", "op", "x"},
		{"read", ".bad"}, {"id"}, {"id", "nope"}, {"op"}, {"op", "create"}, {"op", "add", "x"}, {"op", "add", "x", "notatoken"},
		{"op", "create", "x", "--member", "bad:admin"}, {"op", "add", "x", "y", "--role", "king"}} {
		code, _, errs := runT(t, args...)
		if code != 2 || !strings.Contains(errs, "usage: liaison") {
			t.Fatalf("%v: code %d, stderr %q", args, code, errs)
		}
	}
}

func TestNoIdentityOrRelay(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	code, _, errs := runT(t, "send", "op", "hi")
	if code != 1 || !strings.Contains(errs, "liaison id new") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	must(t, "id", "new", "--name", "alice")
	code, _, errs = runT(t, "send", "--relay", "127.0.0.1:1", "op", "hi")
	if code != 1 || !strings.HasPrefix(errs, "liaison: ") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	t.Setenv("LIAISON_PASSPHRASE", "wrong")
	code, _, errs = runT(t, "id", "show")
	if code != 1 || !strings.Contains(errs, "wrong passphrase") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
}

const ts = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`

// The README newcomer flow, exactly.
func TestNewcomerFlow(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	out := must(t, "id", "new", "--name", "alice")
	if !regexp.MustCompile(`fingerprint: (\d{5} ){5}\d{5}\ntoken: liaison-id1:`).MatchString(out) {
		t.Fatalf("id new: %q", out)
	}
	if code, _, errs := runT(t, "id", "new"); code != 1 || !strings.Contains(errs, "refusing to overwrite") {
		t.Fatalf("second id new: %d %q", code, errs)
	}
	if out := must(t, "op", "create", "ops1"); !strings.Contains(out, "* you created operation ops1 — epoch 0 — you joined") {
		t.Fatalf("create: %q", out)
	}
	if out := must(t, "send", "ops1", "hello", "world"); out != "sent ops1 seq 3\n" {
		t.Fatalf("send: %q", out)
	}
	for _, e := range srv.Entries("ops1") {
		if bytes.Contains(e, []byte("hello world")) {
			t.Fatal("plaintext reached the relay")
		}
	}
	out = must(t, "read", "ops1", "--from", "1")
	re := regexp.MustCompile(`^1  ` + ts + `  \* you created operation ops1 — epoch 0 — you joined\n` +
		`2  ` + ts + `  \* you updated your key — epoch 1\n` +
		`3  ` + ts + `  alice✓: hello world\n$`)
	if !re.MatchString(out) {
		t.Fatalf("read: %q", out)
	}
	if out := must(t, "read", "ops1", "--from", "3"); !strings.HasPrefix(out, "3  ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("read --from 3: %q", out)
	}
	if out := must(t, "op", "list"); !strings.HasPrefix(out, "ops1  epoch 1  1 members  seq 3  admin") {
		t.Fatalf("list: %q", out)
	}
	// Nothing readable at rest.
	filepath.Walk(os.Getenv("LIAISON_HOME"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte("hello world")) {
				t.Fatalf("plaintext in %s", p)
			}
		}
		return nil
	})
}

func TestTwoPeople(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	t.Setenv("LIAISON_KEY_UPDATE_AFTER", "-1s")
	alice, bob := []string{"--home", t.TempDir()}, []string{"--home", t.TempDir()}
	must(t, append(alice, "id", "new", "--name", "alice")...)
	must(t, append(bob, "id", "new", "--name", "bob")...)
	bobToken := strings.TrimSpace(must(t, append(bob, "id", "export")...))
	aliceToken := strings.TrimSpace(must(t, append(alice, "id", "export")...))

	must(t, append(alice, "op", "create", "op-x")...)
	must(t, append(alice, "send", "op-x", "--priority", "flash", "before bob")...)
	if p := srv.Publishes(); p[len(p)-1].Class != wire.ClassFlash {
		t.Fatal("class not passed")
	}
	if out := must(t, append(alice, "op", "add", "op-x", bobToken, "--role", "centre")...); !strings.Contains(out, "you added bob (centre) — epoch 1") {
		t.Fatalf("add: %q", out)
	}
	must(t, append(alice, "send", "op-x", "after", "bob\x1b[2J")...)
	out := must(t, append(bob, "read", "op-x")...)
	re := regexp.MustCompile(`^1  ` + ts + `  \* alice created operation op-x — epoch 0\n` +
		`2  ` + ts + `  \[sent before you joined\]\n` +
		`3  ` + ts + `  \* alice added you \(centre\) — epoch 1 — you joined\n` +
		`4  ` + ts + `  alice✓: after bob\\x1b\[2J\n$`)
	if !re.MatchString(out) {
		t.Fatalf("bob read: %q", out)
	}
	if strings.Contains(out, "before bob") {
		t.Fatal("bob read a message from before he joined")
	}

	va := must(t, append(alice, "op", "verify", "op-x")...)
	vb := must(t, append(bob, "op", "verify", "op-x")...)
	if va != vb || !regexp.MustCompile(`^op-x epoch 1\ncode: (\d{5} ){3}\d{5}\n$`).MatchString(va) {
		t.Fatalf("verify %q vs %q", va, vb)
	}
	sa := must(t, append(alice, "id", "show", "--peer", bobToken)...)
	sb := must(t, append(bob, "id", "show", "--peer", aliceToken)...)
	num := regexp.MustCompile(`safety number: ((\d{5} ){11}\d{5})\n`)
	if m1, m2 := num.FindStringSubmatch(sa), num.FindStringSubmatch(sb); m1 == nil || m2 == nil || m1[1] != m2[1] {
		t.Fatalf("safety numbers %q %q", sa, sb)
	}
	members := must(t, append(bob, "op", "members", "op-x")...)
	if !strings.Contains(members, "admin  alice\n") || !strings.Contains(members, "centre  bob  (you)\n") {
		t.Fatalf("members %q", members)
	}

	if out := must(t, append(alice, "op", "update", "op-x")...); !strings.Contains(out, "you updated your key — epoch 2") {
		t.Fatalf("update: %q", out)
	}
	if out := must(t, append(alice, "op", "remove", "op-x", "bob")...); !strings.Contains(out, "you removed bob — epoch 3") {
		t.Fatalf("remove: %q", out)
	}
	must(t, append(alice, "send", "op-x", "bob must not read this")...)
	out = must(t, append(bob, "read", "op-x", "--from", "5")...)
	if strings.Contains(out, "must not read") || !strings.Contains(out, "alice removed you — epoch 3 — you are no longer a member") ||
		!strings.Contains(out, "[sent while you were not a member]") {
		t.Fatalf("bob after removal: %q", out)
	}
	if code, _, errs := runT(t, append(bob, "send", "op-x", "hi")...); code != 1 || !strings.Contains(errs, "not a member") {
		t.Fatalf("removed send: %d %q", code, errs)
	}
}

// lineWriter collects output and signals every complete line.
type lineWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for {
		line, err := w.b.ReadString('\n')
		if err != nil {
			w.b.Reset()
			w.b.WriteString(line)
			return len(p), nil
		}
		w.lines <- strings.TrimSuffix(line, "\n")
	}
}

// read --follow prints live entries, survives the relay dropping the
// connection, flags a replay, and exits 0 when its context (SIGINT) ends.
func TestReadFollow(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	t.Setenv("LIAISON_KEY_UPDATE_AFTER", "-1s")
	alice, bob := []string{"--home", t.TempDir()}, []string{"--home", t.TempDir()}
	must(t, append(alice, "id", "new", "--name", "alice")...)
	must(t, append(bob, "id", "new", "--name", "bob")...)
	bobToken := strings.TrimSpace(must(t, append(bob, "id", "export")...))
	must(t, append(alice, "op", "create", "op", "--member", bobToken+":officer")...)
	must(t, append(alice, "send", "op", "one")...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 16)}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(bob, "read", "--follow", "op"), out, io.Discard) }()
	next := func(i int, want string) {
		t.Helper()
		select {
		case line := <-out.lines:
			if !strings.HasPrefix(line, strconv.Itoa(i)+"  ") || !strings.HasSuffix(line, want) {
				t.Fatalf("line %d %q, want ...%q", i, line, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line %d", i)
		}
	}
	next(1, "— you joined")
	next(2, "alice✓: one")
	must(t, append(alice, "send", "op", "two")...)
	next(3, "alice✓: two")
	srv.DropAll()
	must(t, append(alice, "send", "op", "three")...)
	next(4, "alice✓: three")
	srv.Append("op", srv.Entries("op")[3])
	next(5, "[rejected]")
	next(5, "! replay of alice's message #2 (epoch 0) ignored")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	select {
	case line := <-out.lines:
		t.Fatalf("extra line %q", line)
	default:
	}
}

func TestParseArgs(t *testing.T) {
	e := &env{}
	fs := e.newFlagSet("x")
	n := fs.Int("n", 0, "")
	pos, err := parseArgs(fs, []string{"a", "-n", "3", "b", "--", "-c", "-n"})
	if err != nil || *n != 3 || strings.Join(pos, ",") != "a,b,-c,-n" {
		t.Fatalf("pos %q n %d err %v", pos, *n, err)
	}
}
