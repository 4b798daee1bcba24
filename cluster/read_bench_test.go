package cluster

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkRead measures a catch-up read: 256 entries of 512 B per Read,
// from a one-node store, as the relay reads for a subscriber behind the
// head.
func BenchmarkRead(b *testing.B) {
	n := openNode(b, b.TempDir())
	defer n.Close()
	env := bytes.Repeat([]byte{0x5a}, 512)
	const stored = 4096
	for i := 0; i < stored; i++ {
		if _, err := n.Publish(context.Background(), Publish{Op: "read", MsgID: msgID(b), Envelope: env}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(256 * 512)
	b.ResetTimer()
	from := uint64(1)
	for i := 0; i < b.N; i++ {
		bt, err := n.Read("read", from, 256, 512<<10)
		if err != nil || len(bt.Envelopes) != 256 {
			b.Fatalf("read from %d: %d entries, %v", from, len(bt.Envelopes), err)
		}
		if from += 256; from > stored-255 {
			from = 1
		}
	}
}
