package wire

import (
	"encoding/hex"
	"testing"
)

// ChainVector is chain_1 for the entry "hello": the vector in
// docs/protocol.md, also checked by the cluster package's own copy.
const chainVector = "a41de667c15557cbd8acdd71ef0fef5dc73561374baed8330f8adb0e1424cd62"

func TestChainVector(t *testing.T) {
	got := ChainNext([HashLen]byte{}, []byte("hello"))
	if hex.EncodeToString(got[:]) != chainVector {
		t.Fatalf("chain_1(hello) = %x, want %s", got, chainVector)
	}
}

func TestChainerMatchesChainNext(t *testing.T) {
	var c Chainer
	var a, b [HashLen]byte
	for i := range 5 {
		e := make([]byte, i*100+1)
		e[0] = byte(i)
		a, b = ChainNext(a, e), c.Next(b, e)
		if a != b {
			t.Fatalf("entry %d: Chainer gives %x, ChainNext %x", i, b, a)
		}
	}
}
