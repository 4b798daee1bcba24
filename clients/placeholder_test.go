package clients

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPlaintextEnvelopeRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	b := PlaintextEnvelope("alice", "meet at 10:00 — ok?", now)
	if !strings.HasPrefix(string(b), PlaintextMagic) {
		t.Fatal("no magic")
	}
	m, err := ParsePlaintextEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sender != "alice" || m.Text != "meet at 10:00 — ok?" || !m.Time.Equal(now) {
		t.Fatalf("%+v", m)
	}
}

func TestPlaintextEnvelopeEdges(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	m, err := ParsePlaintextEnvelope(PlaintextEnvelope(long, "", time.Unix(0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sender) != 254 || m.Text != "" {
		t.Fatalf("sender %d bytes, text %q", len(m.Sender), m.Text)
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("ciphertext"),
		[]byte(PlaintextMagic + "short"),
		append([]byte(PlaintextMagic), 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'),
		append([]byte(PlaintextMagic), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff),
	} {
		if _, err := ParsePlaintextEnvelope(bad); !errors.Is(err, ErrNotPlaintext) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
