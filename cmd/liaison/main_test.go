package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"liaison/clients"
	"liaison/clients/fakerelay"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func newServer(t *testing.T) *fakerelay.Server {
	s := fakerelay.New("n1")
	t.Cleanup(s.Close)
	return s
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, _ := runT(t, args...)
		if code != 0 || !strings.Contains(out, "send OP TEXT") || !strings.Contains(out, "read OP") {
			t.Fatalf("%v: code %d, out %q", args, code, out)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"send"}, {"send", "op"}, {"read"}, {"send", "--priority", "urgent", "op", "x"}, {"read", ".bad"}} {
		code, _, errs := runT(t, args...)
		if code != 2 || !strings.Contains(errs, "usage: liaison") {
			t.Fatalf("%v: code %d, stderr %q", args, code, errs)
		}
	}
}

func TestUnreachableRelay(t *testing.T) {
	code, _, errs := runT(t, "send", "--relay", "127.0.0.1:1", "op", "hi")
	if code != 1 || !strings.HasPrefix(errs, "liaison: ") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
}

func TestSendThenRead(t *testing.T) {
	srv := newServer(t)
	code, out, errs := runT(t, "--relay", srv.Addr, "send", "--as", "alice", "op-7", "hello", "world")
	if code != 0 || out != "sent op-7 seq 1\n" {
		t.Fatalf("code %d, out %q, err %q", code, out, errs)
	}
	code, out, _ = runT(t, "send", "op-7", "--relay", srv.URL, "--as", "bob", "--priority", "flash", "second\x1b[2J")
	if code != 0 || out != "sent op-7 seq 2\n" {
		t.Fatalf("code %d, out %q", code, out)
	}
	if p := srv.Publishes(); p[1].Class != wire.ClassFlash {
		t.Fatalf("class %v", p[1].Class)
	}
	srv.Append("op-7", []byte("opaque ciphertext"))

	code, out, errs = runT(t, "read", "op-7", "--relay", srv.Addr)
	if code != 0 {
		t.Fatalf("code %d, err %q", code, errs)
	}
	re := regexp.MustCompile(`^1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  alice: hello world\n` +
		`2  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  bob: second\\x1b\[2J\n` +
		`3  <17-byte envelope>\n$`)
	if !re.MatchString(out) {
		t.Fatalf("read output %q", out)
	}

	code, out, _ = runT(t, "read", "--relay", srv.Addr, "--from", "3", "op-7")
	if code != 0 || out != "3  <17-byte envelope>\n" {
		t.Fatalf("from 3: code %d, out %q", code, out)
	}
	code, out, _ = runT(t, "read", "--relay", srv.Addr, "--from", "9", "op-7")
	if code != 0 || out != "" {
		t.Fatalf("from 9: code %d, out %q", code, out)
	}
	code, out, _ = runT(t, "read", "--relay", srv.Addr, "empty-op")
	if code != 0 || out != "" {
		t.Fatalf("empty: code %d, out %q", code, out)
	}
}

func TestSendDuplicate(t *testing.T) {
	srv := newServer(t)
	calls := 0
	srv.SetOnPublish(func(*wire.Publish) fakerelay.Decision {
		calls++
		if calls == 1 {
			return fakerelay.Decision{Action: fakerelay.CommitThenDrop}
		}
		return fakerelay.Decision{Action: fakerelay.Commit}
	})
	code, out, errs := runT(t, "--relay", srv.Addr, "send", "op", "x")
	if code != 0 || out != "sent op seq 1 (duplicate)\n" {
		t.Fatalf("code %d, out %q, err %q", code, out, errs)
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

// read --follow prints live messages, survives the relay dropping the
// connection, and exits 0 when its context (SIGINT) ends.
func TestReadFollow(t *testing.T) {
	srv := newServer(t)
	srv.Append("op", clients.PlaintextEnvelope("alice", "one", time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{lines: make(chan string, 16)}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"read", "--follow", "--relay", srv.Addr, "op"}, out, io.Discard) }()

	next := func(i int, want string) {
		t.Helper()
		select {
		case line := <-out.lines:
			if !strings.HasPrefix(line, fmt.Sprint(i, "  ")) || !strings.HasSuffix(line, want) {
				t.Fatalf("line %d %q, want ...%q", i, line, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line %d", i)
		}
	}
	next(1, "alice: one")
	srv.Append("op", clients.PlaintextEnvelope("bob", "two", time.Now()))
	next(2, "bob: two")
	srv.DropAll()
	srv.Append("op", clients.PlaintextEnvelope("carol", "three", time.Now()))
	next(3, "carol: three")
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
