package crypto

import (
	"errors"
	"testing"
)

// A state restored from an older copy, told about the envelopes it sent
// after that copy (as it reads them from the log), never seals with a
// message key it already used: the receiver opens every message and sees no
// replay.
func TestSkipSentAfterRollback(t *testing.T) {
	w := newWorld(t, "op-rollback", []string{"alice", "bob"}, nil)
	alice := w.groups["alice"]
	alice.Seal([]byte("m0"), LogHead{})
	old := save(t, alice) // the backup: next index 1
	sent := [][]byte{w.seal("alice", "m1"), w.seal("alice", "m2"), w.seal("alice", "m3")}

	restored, err := UnmarshalGroup(w.ids["alice"], old)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range sent {
		h, err := ParseEnvelopeHeader(env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := restored.Open(env); !errors.Is(err, ErrOwnEnvelope) {
			t.Fatalf("own envelope: %v", err)
		}
		if err := restored.SkipSent(h.Epoch, h.Index); err != nil {
			t.Fatal(err)
		}
	}
	next, err := restored.Seal([]byte("after restore"), LogHead{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseEnvelopeHeader(next)
	if h.Index != 4 {
		t.Fatalf("sealed at index %d after the log showed 3, want 4", h.Index)
	}
	bob := w.groups["bob"]
	for _, env := range append(sent, next) {
		m, err := bob.Open(env)
		if err != nil {
			t.Fatalf("bob: %v", err)
		}
		if m.Index == 4 && string(m.Plaintext) != "after restore" {
			t.Fatalf("index 4 reads %q", m.Plaintext)
		}
	}
	// Skipping backwards or within the chain is a no-op; absurd jumps fail.
	if err := restored.SkipSent(h.Epoch, 1); err != nil {
		t.Fatal(err)
	}
	if err := restored.SkipSent(h.Epoch, 1<<30); !errors.Is(err, ErrChainExhausted) {
		t.Fatalf("huge skip: %v", err)
	}
	if err := restored.SkipSent(h.Epoch+7, 3); err != nil {
		t.Fatalf("unknown epoch: %v", err)
	}
}
