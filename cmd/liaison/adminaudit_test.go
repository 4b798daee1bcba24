package main

import (
	"bufio"
	"bytes"
	"path/filepath"
	"testing"

	"liaison/cluster"
)

// The audit stream framing round-trips and refuses truncated or oversize
// frames.
func TestAuditStream(t *testing.T) {
	raw := [][]byte{[]byte("one"), []byte("two entries")}
	file := filepath.Join(t.TempDir(), "trail")
	if err := writeAuditFile(file, raw); err != nil {
		t.Fatal(err)
	}
	got, err := readAuditFile(file)
	if err != nil || len(got) != 2 || string(got[1]) != "two entries" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	for _, bad := range [][]byte{{0, 0, 0, 5, 'a'}, {0, 0, 0}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := readAuditStream(bufio.NewReader(bytes.NewReader(bad))); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestFindAdmin(t *testing.T) {
	rep := &cluster.AdminsReport{Admins: []cluster.AdminReport{
		{Key: "aa", Name: "alice", Fingerprint: "12345 67890"},
		{Key: "bb", Name: "bob", Fingerprint: "12399 00000"},
	}}
	for who, want := range map[string]string{"alice": "aa", "BB": "bb", "12345 6": "aa", "1239900": "bb"} {
		if a, err := findAdmin(rep, who); err != nil || a.Key != want {
			t.Errorf("%q: %+v %v", who, a, err)
		}
	}
	for _, who := range []string{"123", "carol", "12"} {
		if _, err := findAdmin(rep, who); err == nil {
			t.Errorf("%q matched", who)
		}
	}
}

func FuzzReadAuditStream(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 'x', 0, 0, 0, 2, 'y', 'z'})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := readAuditStream(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		n := 0
		for _, e := range out {
			n += 4 + len(e)
		}
		if n != len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
	})
}
