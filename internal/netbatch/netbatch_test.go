package netbatch

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// A batch reaches the peer whole and in order, also when it is larger than
// MaxBuffer; outside a batch writes go straight through; between batches
// the connection holds no buffer.
func TestBatchKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	bc := Wrap(a)
	var want bytes.Buffer
	done := make(chan []byte)
	go func() {
		got, _ := io.ReadAll(b)
		done <- got
	}()
	bc.Begin()
	for i := 0; i < 300; i++ {
		size := 1000
		if i%50 == 7 {
			size = MaxBuffer + 1000 // written through, in its place
		}
		chunk := bytes.Repeat([]byte{byte(i)}, size)
		want.Write(chunk)
		if n, err := bc.Write(chunk); err != nil || n != len(chunk) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := bc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("direct")
	a.Close()
	if got := <-done; !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer got %d bytes, want %d (or different content)", len(got), want.Len())
	}
	if bc.buf != nil {
		t.Fatalf("kept a %d-byte buffer after the batch", cap(bc.buf))
	}
}
