package session

import (
	"reflect"
	"testing"
)

// FuzzDecodePayload: the plaintext inside an envelope comes from another
// member, so its decoder is fed untrusted bytes. It never panics, and what
// it accepts re-encodes to a payload that decodes the same.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range []Payload{
		{V: PayloadVersion, Type: TypeChat, TimeMS: 1700000000000, Text: "Team A in position at gate 4"},
		{V: PayloadVersion, Type: TypeChat, TimeMS: 0, Text: ""},
		{V: PayloadVersion, Type: TypeTask, TimeMS: 1700000000000, TaskID: make([]byte, TaskIDLen), Priority: 2, DueMS: 1700000600000, Text: "Secure gate 4"},
		{V: PayloadVersion, Type: TypeAck, TimeMS: 1700000000001, TaskID: make([]byte, TaskIDLen), State: uint8(AckUnable), Text: "gate blocked"},
	} {
		b, err := EncodePayload(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x01, 0x01})
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePayload(b)
		if err != nil {
			return
		}
		out, err := EncodePayload(p)
		if err != nil {
			t.Fatalf("accepted payload does not re-encode: %v", err)
		}
		q, err := DecodePayload(out)
		if err != nil || !reflect.DeepEqual(q, p) {
			t.Fatalf("round trip changed the payload: %+v -> %+v (%v)", p, q, err)
		}
	})
}
