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
