package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// frame that decodes to the same value (so nothing the relay forwards can be
// changed by a decode/encode round trip).
func FuzzDecode(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{byte(TypeSubscribe), 0xa2, 0x01, 0x01, 0x01, 0x02})
	f.Add([]byte{byte(TypeDeliver), 0xa1, 0x04, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		out, err := Encode(fr)
		if err != nil {
			t.Fatalf("decoded frame does not re-encode: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		out2, _ := Encode(again)
		if !bytes.Equal(out, out2) {
			t.Fatal("encoding not stable")
		}
		if p, ok := fr.(*Publish); ok && !bytes.Equal(p.Envelope, again.(*Publish).Envelope) {
			t.Fatal("envelope changed in a round trip")
		}
	})
}
