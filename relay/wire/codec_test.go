package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleFrames() []Frame {
	id := bytes.Repeat([]byte{7}, MsgIDLen)
	return []Frame{
		&Hello{Versions: []uint{1}, Node: "n1", Challenge: bytes.Repeat([]byte{1}, ChallengeLen), Time: 1700000000000},
		&Auth{Version: 1, Client: "liaison-go"},
		&Auth{Version: 1, Identity: []byte("token"), Signature: bytes.Repeat([]byte{2}, 64)},
		&Auth{Version: 1, Identity: []byte("token"), Signature: bytes.Repeat([]byte{2}, 64), Binding: BindingTLSExporter},
		&Welcome{Version: 1, Node: "n1", Session: "abc"},
		&Subscribe{Req: 1, Op: "op-1", From: 1},
		&Subscribed{Req: 1, Op: "op-1", From: 1, Head: 10, First: 1},
		&Unsubscribe{Req: 2, Op: "op-1"},
		&Subscribe{Req: 6, Op: "op-1", From: 3, Retained: true},
		&Subscribed{Req: 6, Op: "op-1", From: 9, Head: 12, First: 9, Prev: bytes.Repeat([]byte{3}, HashLen), LogAnchor: bytes.Repeat([]byte{4}, HashLen), Retained: 2},
		&Retained{Op: "op-1", Seq: 4, Entry: []byte("commit")},
		&Publish{Req: 3, Op: "op.2_x", MsgID: id, Class: ClassFlash, Envelope: []byte("sealed")},
		&Ack{Req: 3, Op: "op-1", Seq: 42, Dup: true},
		&Deliver{Op: "op-1", Seq: 5, Prev: make([]byte, HashLen), Envelopes: [][]byte{[]byte("a"), []byte("bc")}},
		&Deliver{Op: "op-1", Seq: 7, Prev: make([]byte, HashLen), Envelopes: [][]byte{[]byte("c"), []byte("d")}, Kinds: []byte{1, 0}},
		&Publish{Req: 5, Op: "op", MsgID: id, Kind: KindCommit, Envelope: make([]byte, MaxEnvelope+1)},
		&Error{Req: 4, Code: CodeCompacted, Message: "gone", Op: "op-1", Seq: 9},
		&PresenceReq{Req: 6, Op: "op-1"},
		&Presence{Req: 6, Op: "op-1", Time: 1700000000000, Entries: []PresenceEntry{
			{Member: bytes.Repeat([]byte{3}, 32), Node: "n1", Conn: "c1", Connected: true, Since: 1700000000000, LastSeen: 1700000001000, Delivered: 17},
			{Node: "n2", Conn: "c2", Since: 1, LastSeen: 2},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		b, err := Encode(f)
		if err != nil {
			t.Fatalf("%s: %v", f.Type(), err)
		}
		if Type(b[0]) != f.Type() {
			t.Fatalf("%s: type byte %x", f.Type(), b[0])
		}
		g, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", f.Type(), err)
		}
		if !reflect.DeepEqual(f, g) {
			t.Fatalf("%s: round trip changed the frame:\n%#v\n%#v", f.Type(), f, g)
		}
		b2, _ := Encode(g)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%s: encoding is not deterministic", f.Type())
		}
	}
}

// The envelope bytes in a decoded frame are exactly the bytes sent, and do
// not alias the input buffer.
func TestEnvelopeVerbatimAndOwned(t *testing.T) {
	env := []byte{0x00, 0xff, 0xa0, 0x5f, 0x7f, 0xbf} // bytes that look like CBOR headers
	b, err := Encode(&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Envelope: env})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := f.(*Publish).Envelope
	if !bytes.Equal(got, env) {
		t.Fatalf("envelope changed: %x", got)
	}
	for i := range b {
		b[i] = 0
	}
	if !bytes.Equal(got, env) {
		t.Fatal("decoded envelope aliases the input buffer")
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	bad := []Frame{
		&Auth{Version: 1, Binding: 2},
		&Publish{Req: 1, Op: "", MsgID: make([]byte, MsgIDLen), Envelope: []byte("x")},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, 3), Envelope: []byte("x")},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Envelope: nil},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Envelope: make([]byte, MaxEnvelope+1)},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Class: 3, Envelope: []byte("x")},
		&Subscribe{Req: 1, Op: "op", From: 0},
		&Subscribe{Req: 1, Op: strings.Repeat("a", MaxOpLen+1), From: 1},
		&Subscribe{Req: 1, Op: ".hidden", From: 1},
		&Subscribe{Req: 1, Op: "sp ace", From: 1},
		&Deliver{Op: "op", Seq: 1, Prev: make([]byte, 5), Envelopes: [][]byte{[]byte("x")}},
		&Deliver{Op: "op", Seq: 1, Prev: make([]byte, HashLen)},
		&Hello{Versions: []uint{1}, Challenge: make([]byte, 8)},
		&Error{Code: 0},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Kind: MaxKind + 1, Envelope: []byte("x")},
		&Publish{Req: 1, Op: "op", MsgID: make([]byte, MsgIDLen), Kind: KindCommit, Envelope: make([]byte, MaxCommit+1)},
		&Deliver{Op: "op", Seq: 1, Prev: make([]byte, HashLen), Envelopes: [][]byte{[]byte("x")}, Kinds: []byte{0, 1}},
		&Deliver{Op: "op", Seq: 1, Prev: make([]byte, HashLen), Envelopes: [][]byte{[]byte("x")}, Kinds: []byte{7}},
		&Ack{Op: "op", Seq: 0},
		&Subscribed{Op: "op", From: 5, Prev: make([]byte, HashLen)},
		&Subscribed{Op: "op", From: 1, Prev: make([]byte, HashLen), LogAnchor: make([]byte, HashLen)},
		&Retained{Op: "op", Seq: 0, Entry: []byte("x")},
		&Subscribed{Op: "op", From: 5, Retained: 1},
		&Subscribed{Op: "op", From: 2, Prev: make([]byte, HashLen), LogAnchor: make([]byte, HashLen), Retained: 2},
		&Retained{Op: "op", Seq: 1},
		&Retained{Op: "op", Seq: 1, Entry: make([]byte, MaxCommit+1)},
	}
	for _, f := range bad {
		if _, err := Encode(f); err == nil {
			t.Errorf("Encode accepted invalid %s %#v", f.Type(), f)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	valid, _ := Encode(&Subscribe{Req: 1, Op: "op", From: 1})
	cases := map[string][]byte{
		"nil":             nil,
		"type only":       {byte(TypeSubscribe)},
		"unknown type":    {0x42, 0xa0},
		"not a map":       {byte(TypeSubscribe), 0x01},
		"trailing bytes":  append(append([]byte{}, valid...), 0x00),
		"truncated":       valid[:len(valid)-1],
		"duplicate key":   {byte(TypeSubscribe), 0xa2, 0x01, 0x01, 0x01, 0x02},
		"indefinite map":  {byte(TypeSubscribe), 0xbf, 0x01, 0x01, 0xff},
		"tagged":          {byte(TypeSubscribe), 0xc0, 0xa0},
		"missing fields":  {byte(TypeSubscribe), 0xa0},
		"negative from":   {byte(TypeSubscribe), 0xa3, 0x01, 0x01, 0x02, 0x62, 'o', 'p', 0x03, 0x20},
		"deep nesting":    append([]byte{byte(TypeDeliver)}, bytes.Repeat([]byte{0x81}, 64)...),
		"huge array head": {byte(TypeDeliver), 0xa1, 0x04, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"huge bytes head": {byte(TypePublish), 0xa1, 0x05, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestUnknownKeysIgnored(t *testing.T) {
	// {1: 1, 2: "op", 3: 1, 99: "future"}
	b := []byte{byte(TypeSubscribe), 0xa4, 0x01, 0x01, 0x02, 0x62, 'o', 'p', 0x03, 0x01, 0x18, 0x63, 0x66, 'f', 'u', 't', 'u', 'r', 'e'}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.(*Subscribe); s.Op != "op" || s.From != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestValidOp(t *testing.T) {
	for _, ok := range []string{"a", "op-1", "OP.2024_x", strings.Repeat("z", MaxOpLen)} {
		if !ValidOp(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", ".x", "a/b", "ä", "a b", strings.Repeat("z", MaxOpLen+1), "a\x00"} {
		if ValidOp(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCodes(t *testing.T) {
	for c := CodeBadFrame; c <= CodeStaleHead; c++ {
		if strings.HasPrefix(c.String(), "code(") {
			t.Errorf("code %d has no name", c)
		}
	}
	if !CodeTimeout.Retryable() || CodeBadRequest.Retryable() {
		t.Fatal("retryable classification wrong")
	}
	e := &Error{Code: CodeCompacted, Message: "x"}
	if e.Error() != "liaison: compacted: x" {
		t.Fatal(e.Error())
	}
}
