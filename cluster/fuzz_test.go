package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for the bytes a node takes from other nodes: forwarding
// frames, membership requests, forwarding responses, gossip frames, and
// snapshots (a
// leader's InstallSnapshot stream, or a backup given to --restore), which
// become the FSM's bbolt file. (Raft entries: FuzzDecodeCommand.)

// FuzzForwardFrame: readFrame never allocates past its bound or panics.
func FuzzForwardFrame(f *testing.F) {
	f.Add(binary.AppendUvarint(nil, 3), []byte{1, 2, 3})
	f.Add(binary.AppendUvarint(nil, maxForwardFrame+1), []byte{})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, []byte{})
	f.Fuzz(func(t *testing.T, hdr, body []byte) {
		b, err := readFrame(bufio.NewReader(bytes.NewReader(append(hdr, body...))))
		if err == nil && (len(b) == 0 || len(b) > maxForwardFrame) {
			t.Fatalf("accepted a frame of %d bytes", len(b))
		}
	})
}

// FuzzGossipFrame: readGossipFrame stays within its bounds, never panics,
// and what it accepts re-encodes to a frame that reads back the same (the
// lengths may have come in a longer uvarint form than gossipFrame writes).
func FuzzGossipFrame(f *testing.F) {
	f.Add(gossipFrame("n1", []byte("presence")))
	f.Add(append(gossipFrame("n2", []byte{0}), 1, 2))
	f.Add([]byte{129, 1})
	f.Add(append([]byte{2, 'n', '1'}, binary.AppendUvarint(nil, MaxGossip+1)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		node, b, err := readGossipFrame(r)
		if err != nil {
			return
		}
		if node == "" || len(node) > 128 || len(b) == 0 || len(b) > MaxGossip {
			t.Fatalf("accepted node %q with a report of %d bytes", node, len(b))
		}
		again := gossipFrame(node, b)
		node2, b2, err := readGossipFrame(bufio.NewReader(bytes.NewReader(again)))
		if err != nil || node2 != node || !bytes.Equal(b2, b) || len(again) > len(in) {
			t.Fatalf("%x re-encoded as %x reads back %q %x %v", in, again, node2, b2, err)
		}
	})
}

// FuzzDecodeMembership: a membership request decodes within its bounds and
// re-encodes to the same bytes.
func FuzzDecodeMembership(f *testing.F) {
	enc := func(action byte, id, addr string) []byte {
		b := []byte{commandMembership, action}
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendUvarint(b, uint64(len(addr)))
		return append(b, addr...)
	}
	f.Add(enc(memberAdd, "n4", "127.0.0.4:7401"))
	f.Add(enc(memberRemove, "n2", ""))
	f.Add([]byte{commandMembership})
	f.Fuzz(func(t *testing.T, b []byte) {
		action, id, addr, err := decodeMembership(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v is not ErrBadCommand", err)
			}
			return
		}
		if len(id) == 0 || len(id) > 128 || len(addr) > 256 {
			t.Fatalf("out of bounds: id %d bytes, addr %d bytes", len(id), len(addr))
		}
		if !bytes.Equal(enc(action, id, addr), b) {
			t.Fatal("does not re-encode to the same bytes")
		}
	})
}

// FuzzDecodeFwdResponse: a forwarding response decodes within its bounds
// and re-encodes to the same bytes.
func FuzzDecodeFwdResponse(f *testing.F) {
	r := newFwdResponse(7, 2, func([]byte) {})
	r.status[0], r.seqs[0], r.indexes[0] = fwdOK, 12, 40
	r.status[1], r.msgs[1] = fwdStaleHead, "stale"
	f.Add(r.encode())
	f.Add([]byte{1, 1, fwdOK, 1, 1, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, outs, err := decodeFwdResponse(b)
		if err != nil {
			return
		}
		if len(outs) > MaxBatchCount {
			t.Fatalf("%d outcomes", len(outs))
		}
		re := newFwdResponse(id, len(outs), func([]byte) {})
		for i, o := range outs {
			if len(o.msg) > maxFwdMsg {
				t.Fatalf("message of %d bytes", len(o.msg))
			}
			re.status[i], re.seqs[i], re.indexes[i], re.msgs[i] = o.status, o.seq, o.index, o.msg
		}
		if !bytes.Equal(re.encode(), b) {
			t.Fatal("does not re-encode to the same bytes")
		}
	})
}

// storeFileBytes returns a small valid FSM file holding three entries.
func storeFileBytes(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "fsm.db")
	st, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var in []entryIn
	for i := 1; i <= 3; i++ {
		var id [MsgIDLen]byte
		id[0] = byte(i)
		in = append(in, entryIn{index: uint64(i), cmd: command{kind: commandPublish, timeMS: 1,
			pubs: []Publish{{Op: "op", MsgID: id, Kind: KindMessage, Envelope: fmt.Appendf(nil, "entry-%d", i)}}}})
	}
	if _, _, err := st.apply(in); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRestoreSnapshot: whatever bytes arrive as a snapshot, restoring them
// either installs a store whose logs verify, or fails and leaves the
// node's store as it was; it never panics.
func FuzzRestoreSnapshot(f *testing.F) {
	good := storeFileBytes(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	flipped := bytes.Clone(good)
	if i := bytes.Index(flipped, []byte("entry-2")); i >= 0 {
		flipped[i+6] ^= 1
	}
	f.Add(flipped)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := openStore(filepath.Join(t.TempDir(), "fsm.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.close()
		if err := st.restore(bytes.NewReader(b)); err != nil {
			if h := st.head("op"); h.Last != 0 {
				t.Fatalf("a failed restore changed the store: %+v", h)
			}
			return
		}
		h := st.head("op")
		if h.Last > 0 {
			batch, err := st.read("op", h.First, 1000, 1<<20)
			if err != nil {
				t.Fatalf("restored store does not read: %v", err)
			}
			if uint64(len(batch.Envelopes)) != h.Last-h.First+1 {
				t.Fatalf("restored store reads %d of %d entries", len(batch.Envelopes), h.Last-h.First+1)
			}
		}
	})
}
