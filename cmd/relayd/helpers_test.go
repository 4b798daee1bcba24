package main

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func mustCBOR(t testing.TB, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
