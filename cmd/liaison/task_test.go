package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"liaison/relay/wire"
)

// A centre member tasks two operations; an officer acknowledges on both;
// status (per operation and --all) shows the states; read prints the task
// and the acknowledgement, and reads both operations at once.
func TestTaskCommands(t *testing.T) {
	srv := newServer(t)
	setEnv(t, srv)
	t.Setenv("LIAISON_KEY_UPDATE_AFTER", "-1s")
	centre, officer := []string{"--home", t.TempDir()}, []string{"--home", t.TempDir()}
	must(t, append(centre, "id", "new", "--name", "centre")...)
	must(t, append(officer, "id", "new", "--name", "kim")...)
	kim := strings.TrimSpace(must(t, append(officer, "id", "export")...))
	for _, op := range []string{"op-a", "op-b"} {
		must(t, append(centre, "op", "create", op, "--member", kim+":officer")...)
	}
	out := must(t, append(centre, "task", "send", "op-a", "--priority", "flash", "--due", "30m", "Secure", "gate", "4")...)
	m := regexp.MustCompile(`^task ([0-9a-f]{8}) sent to op-a seq (\d+) \(flash\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("task send: %q", out)
	}
	if p := srv.Publishes(); p[len(p)-1].Class != wire.ClassFlash || p[len(p)-1].Kind != wire.KindTask {
		t.Fatalf("published as class %v kind %v", p[len(p)-1].Class, p[len(p)-1].Kind)
	}
	must(t, append(centre, "task", "send", "op-b", "--priority", "routine", "Report in")...)
	// The officer may not task.
	if code, _, errs := runT(t, append(officer, "task", "send", "op-a", "--priority", "routine", "x")...); code != 1 || !strings.Contains(errs, "only centre and admin") {
		t.Fatalf("officer task send: %d %q", code, errs)
	}
	must(t, append(officer, "task", "ack", "op-a", m[1], "--state", "understood", "--note", "on my way")...)
	must(t, append(officer, "task", "ack", "op-b", "2", "--state", "done")...)
	if code, _, _ := runT(t, append(officer, "task", "ack", "op-a", m[1], "--state", "maybe")...); code != 2 {
		t.Fatalf("bad state: exit %d", code)
	}
	if code, _, _ := runT(t, append(centre, "task", "send", "op-a", "no priority")...); code != 2 {
		t.Fatalf("missing priority: exit %d", code)
	}

	out = must(t, append(centre, "task", "status", "op-a")...)
	for _, want := range []string{
		"task " + m[1] + "  seq " + m[2] + "  flash  due ",
		"delivered 1/1  acknowledged 1/1  overdue 0",
		"Secure gate 4",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^  kim +officer +yes +understood +\d\d:\d\d:\d\d +on my way$`).MatchString(out) {
		t.Fatalf("status member row:\n%s", out)
	}
	out = must(t, append(centre, "task", "status", "--all", "--summary")...)
	if !strings.Contains(out, "operation op-a: 1 task(s)") || !strings.Contains(out, "operation op-b: 1 task(s)") || strings.Contains(out, "MEMBER") {
		t.Fatalf("status --all --summary:\n%s", out)
	}
	out = must(t, append(centre, "read", "op-a", "op-b")...)
	for _, want := range []string{
		"[op-a] " + m[2] + "  ", "centre✓: [TASK " + m[1] + " flash due ",
		"kim✓: [ACK " + m[1] + " understood] on my way",
		"[op-b] 3  ", "kim✓: [ACK ",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("read of two operations lacks %q:\n%s", want, out)
		}
	}
}

func TestParseDue(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.Local)
	for in, want := range map[string]time.Time{
		"45m":                  now.Add(45 * time.Minute),
		"+2h":                  now.Add(2 * time.Hour),
		"19:30":                time.Date(2026, 11, 28, 19, 30, 0, 0, time.Local),
		"17:00":                time.Date(2026, 11, 29, 17, 0, 0, 0, time.Local),
		"2026-12-01 08:00":     time.Date(2026, 12, 1, 8, 0, 0, 0, time.Local),
		"2026-12-01T08:00:00Z": time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseDue(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "-5m", "25:00"} {
		if _, err := parseDue(bad, now); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
