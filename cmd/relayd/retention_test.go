package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

// A member offline while retention removed entries it never read, and one
// added before the removal who never read anything, both catch up: the
// relay answers "compacted before N" to a plain subscribe, and the session
// (subscribing with retained) processes the roster commits kept in the gap,
// records the gap, decrypts everything still held, and checks a later
// envelope's log head against the chain continued from the relay's anchor.
func TestMembersCatchUpAcrossRetention(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, _ := newSession(t, n, "alice")
	bob, bobID := newSession(t, n, "bob")
	carol, carolID := newSession(t, n, "carol")
	const op = "retention-op"
	if _, err := alice.CreateOp(ctx, op, []crypto.Invite{{Token: bobID.Token(), Role: crypto.RoleOfficer}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx, op); err != nil { // bob joins, then goes offline
		t.Fatal(err)
	}
	send := func(prefix string, count int) {
		for i := range count {
			if _, err := alice.Send(ctx, op, fmt.Sprintf("%s %d", prefix, i), wire.ClassRoutine); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Entries 2..6, the addition of carol at 7, 8..12, a key update at 13,
	// then 14..16.
	send("early", 5)
	if _, err := alice.Add(ctx, op, carolID.Token(), crypto.RoleOfficer); err != nil {
		t.Fatal(err)
	}
	send("middle", 5)
	if _, err := alice.KeyUpdate(ctx, op); err != nil {
		t.Fatal(err)
	}
	send("late", 3)
	if h := n.cluster.Head(op); h.Last != 16 {
		t.Fatalf("log has %d entries, want 16", h.Last)
	}

	// Keep the newest 3 entries, through the admin CLI.
	lia := liaisonBinary(t)
	// Setting it is a signed admin action (the node has no admins, so any
	// identity's signature is accepted from loopback).
	if out, err := cliAs(t, nil, "--relay", n.addr.String(), "admin", "retention", op, "--max-count", "3"); err == nil {
		t.Fatalf("unsigned admin retention accepted:\n%s", out)
	}
	sout, err := cliAs(t, newPerson(t, "ops"), "--relay", n.addr.String(), "admin", "retention", op, "--max-count", "3")
	if err != nil || !strings.Contains(sout, "max count 3 (its own)") {
		t.Fatalf("admin retention: %v\n%s", err, sout)
	}
	if aout, err := cliAs(t, nil, "--relay", n.addr.String(), "admin", "audit"); err != nil || !strings.Contains(aout, `max_count="3" op="retention-op"`) {
		t.Fatalf("retention change not in the audit trail: %v\n%s", err, aout)
	}
	if done, err := n.cluster.CompactNow(ctx); err != nil || done != 1 {
		t.Fatalf("compact: %d %v", done, err)
	}
	out, err := exec.CommandContext(ctx, lia, "--relay", n.addr.String(), "admin", "retention", op).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "entries 14 to 16 held") {
		t.Fatalf("admin retention (show): %v\n%s", err, out)
	}

	// A plain subscribe below the oldest entry is answered "compacted
	// before 14".
	raw := dialRawAs(t, n.addr.String(), bobID)
	raw.send(&wire.Subscribe{Req: 1, Op: op, From: 2})
	if e, ok := raw.read().(*wire.Error); !ok || e.Code != wire.CodeCompacted || e.Seq != 14 {
		t.Fatalf("plain subscribe from 2: %#v", e)
	}
	raw.ws.Close()

	check := func(who string, s *session.Session, wantGapFrom uint64, wantCommits int) {
		t.Helper()
		got, err := s.Sync(ctx, op)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		var gaps, commits int
		for _, e := range got {
			switch e.Kind {
			case session.EntryCompacted:
				gaps++
				if e.Seq != 13 || !strings.Contains(e.Summary, fmt.Sprintf("entries %d to 13", wantGapFrom)) {
					t.Fatalf("%s: gap entry %+v", who, e)
				}
			case session.EntryCommit:
				commits++
			case session.EntryRejected:
				t.Fatalf("%s: rejected entry %+v", who, e)
			}
			if len(e.Warnings) > 0 {
				t.Fatalf("%s: warnings on %d: %v", who, e.Seq, e.Warnings)
			}
		}
		if gaps != 1 || commits != wantCommits {
			t.Fatalf("%s: %d gap entries and %d commits, want 1 and %d", who, gaps, commits, wantCommits)
		}
		if texts := entriesText(got); !slices.Equal(texts, []string{"late 0", "late 1", "late 2"}) {
			t.Fatalf("%s decrypted %q", who, texts)
		}
	}
	check("bob", bob, 2, 2)     // kept commits 7 and 13
	check("carol", carol, 1, 3) // genesis, her addition, the key update

	// A message sealed after the compaction names log position 16; both
	// readers check it against the chain continued from the relay's anchor.
	if _, err := alice.Send(ctx, op, "after", wire.ClassRoutine); err != nil {
		t.Fatal(err)
	}
	for who, s := range map[string]*session.Session{"bob": bob, "carol": carol} {
		got, err := s.Sync(ctx, op)
		if err != nil {
			t.Fatal(err)
		}
		if texts := entriesText(got); len(texts) != 1 || texts[0] != "after" || len(got[len(got)-1].Warnings) != 0 {
			t.Fatalf("%s after compaction: %+v", who, got)
		}
	}
}
