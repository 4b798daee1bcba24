package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sampleGossip() *PresenceGossip {
	return &PresenceGossip{Node: "n1", Time: 1700000000000, Ops: []string{"op-a", "op-b"},
		Entries: []PresenceEntry{
			{Member: bytes.Repeat([]byte{1}, 32), Node: "n1", Conn: "c1", Connected: true, Since: 5, LastSeen: 6, Delivered: 3},
			{Node: "n1", Conn: "c2", Since: 7, LastSeen: 8},
		},
		OpIndex: []uint32{0, 1}}
}

func TestGossipRoundTripAndBounds(t *testing.T) {
	b, err := EncodeGossip(sampleGossip())
	if err != nil {
		t.Fatal(err)
	}
	g, err := DecodeGossip(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, sampleGossip()) {
		t.Fatalf("round trip: %+v", g)
	}
	if _, err := DecodeGossip(b, len(b)-1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize gossip: %v", err)
	}
	bad := sampleGossip()
	bad.OpIndex[1] = 2
	if _, err := EncodeGossip(bad); err == nil {
		t.Fatal("encoded an entry pointing past the operations")
	}
	bad = sampleGossip()
	bad.Entries[0].Member = []byte{1}
	if _, err := EncodeGossip(bad); err == nil {
		t.Fatal("encoded a short member key")
	}
}

// FuzzDecodeGossip: gossip comes from other nodes; its decoder never
// panics and what it accepts re-encodes stably.
func FuzzDecodeGossip(f *testing.F) {
	b, err := EncodeGossip(sampleGossip())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xa1, 0x01, 0x61, 0x61})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGossip(b, 1<<20)
		if err != nil {
			return
		}
		out, err := EncodeGossip(g)
		if err != nil {
			t.Fatalf("accepted gossip does not re-encode: %v", err)
		}
		g2, err := DecodeGossip(out, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		out2, _ := EncodeGossip(g2)
		if !bytes.Equal(out, out2) {
			t.Fatal("encoding not stable")
		}
	})
}
