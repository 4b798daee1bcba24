package main

import (
	"strings"
	"testing"
)

// `liaison chat` refuses bad arguments and explains what is missing before
// it takes over the terminal.
func TestChatRefusesBeforeTakingTheTerminal(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	code, _, errs := runT(t, "chat", "a", "b")
	if code != 2 || !strings.Contains(errs, "chat takes at most one NAME") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	code, _, errs = runT(t, "chat", "bad/name")
	if code != 2 || !strings.Contains(errs, "invalid operation name") {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	code, _, errs = runT(t, "chat")
	if code != 1 || !strings.Contains(errs, "liaison id new") {
		t.Fatalf("no identity: code %d, stderr %q", code, errs)
	}
	must(t, "id", "new", "--name", "alice")
	code, _, errs = runT(t, "chat")
	if code != 2 || !strings.Contains(errs, "no local operation yet") {
		t.Fatalf("no operation: code %d, stderr %q", code, errs)
	}
	code, _, errs = runT(t, "chat", "--relay", "127.0.0.1:1", "op")
	if code != 1 || !strings.Contains(errs, "no relay reachable") {
		t.Fatalf("no relay: code %d, stderr %q", code, errs)
	}
	if out := must(t, "help"); !strings.Contains(out, "chat [NAME]") {
		t.Fatal("usage does not mention chat")
	}
}
