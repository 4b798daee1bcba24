package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
)

// generalEncode is Encode through the general CBOR codec.
func generalEncode(t testing.TB, d *Deliver) []byte {
	t.Helper()
	body, err := encMode.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(TypeDeliver)}, body...)
}

// generalDecode is Decode of a deliver frame through the general codec.
func generalDecode(b []byte) (*Deliver, error) {
	d := new(Deliver)
	if err := decMode.Unmarshal(b[1:], d); err != nil {
		return nil, err
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// randomDelivers returns valid deliver frames of every head length.
func randomDelivers(r *rand.Rand) []*Deliver {
	var out []*Deliver
	sizes := []int{1, 23, 24, 255, 256, 65535, 65536, MaxEnvelope}
	seqs := []uint64{1, 23, 24, 255, 256, 65535, 65536, 1 << 32, 1<<63 - 1}
	for i, seq := range seqs {
		d := &Deliver{Op: "op-" + string(rune('a'+i)), Seq: seq, Prev: make([]byte, HashLen)}
		n := 1 + r.IntN(30)
		if i == 0 {
			n = MaxDeliverEntries
		}
		for j := 0; j < n; j++ {
			e := make([]byte, sizes[r.IntN(len(sizes)-1)]) // MaxEnvelope once only
			if i == 0 {
				e = make([]byte, sizes[r.IntN(5)])
			}
			if j == 0 && i == 1 {
				e = make([]byte, MaxEnvelope)
			}
			e[0] = byte(j)
			d.Envelopes = append(d.Envelopes, e)
		}
		if i%2 == 1 {
			d.Kinds = make([]byte, n)
			d.Kinds[0] = byte(KindTask)
		}
		out = append(out, d)
	}
	return out
}

func TestDeliverCodecMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range randomDelivers(r) {
		fast, err := Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if gen := generalEncode(t, d); !bytes.Equal(fast, gen) {
			t.Fatalf("seq %d: fast encoding differs from the general codec's", d.Seq)
		}
		if app, err := AppendDeliver([]byte("x"), d); err != nil || !bytes.Equal(app[1:], fast) || app[0] != 'x' {
			t.Fatalf("seq %d: AppendDeliver differs from Encode (%v)", d.Seq, err)
		}
		got, err := Decode(fast)
		if err != nil {
			t.Fatal(err)
		}
		want, err := generalDecode(fast)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, d) {
			t.Fatalf("seq %d: decoded frame differs", d.Seq)
		}
	}
}

// TestDeliverDecodeOwnsBytes: the decoded frame does not alias the input.
func TestDeliverDecodeOwnsBytes(t *testing.T) {
	d := &Deliver{Op: "op", Seq: 1, Prev: make([]byte, HashLen), Envelopes: [][]byte{[]byte("one"), []byte("two")}, Kinds: []byte{0, 1}}
	b, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	got := f.(*Deliver)
	if string(got.Envelopes[0]) != "one" || string(got.Envelopes[1]) != "two" || got.Kinds[1] != 1 || got.Prev[0] != 0 {
		t.Fatal("decoded deliver frame aliases its input")
	}
}

// TestDeliverDecodeOtherLayouts: input the fast path does not take (other
// key order, longer heads than needed, trailing bytes, wrong types) is
// decided by the general decoder, as before.
func TestDeliverDecodeOtherLayouts(t *testing.T) {
	prev := append([]byte{0x58, 0x20}, make([]byte, HashLen)...)
	cases := map[string][]byte{
		"keys out of order": cat([]byte{byte(TypeDeliver), 0xa4}, []byte{0x02, 0x01}, []byte{0x01, 0x62, 'o', 'p'}, []byte{0x03}, prev, []byte{0x04, 0x81, 0x41, 'x'}),
		"long seq head":     cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p'}, []byte{0x02, 0x18, 0x01}, []byte{0x03}, prev, []byte{0x04, 0x81, 0x41, 'x'}),
		"trailing byte":     cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x81, 0x41, 'x', 0x00}),
		"text envelope":     cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x81, 0x61, 'x'}),
		"null kinds":        cat([]byte{byte(TypeDeliver), 0xa5, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x81, 0x41, 'x', 0x05, 0xf6}),
		"short":             cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x82, 0x41, 'x'}),
		"empty envelope":    cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x81, 0x40}),
		"huge count":        cat([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x01, 0x03}, prev, []byte{0x04, 0x9a, 0xff, 0xff, 0xff, 0xff}),
	}
	for name, b := range cases {
		got, gerr := Decode(b)
		want, werr := generalDecode(b)
		if (gerr == nil) != (werr == nil) {
			t.Errorf("%s: Decode error %v, general decoder %v", name, gerr, werr)
			continue
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decode and the general decoder differ", name)
		}
	}
}

func TestAppendDeliverRefusesInvalid(t *testing.T) {
	b, err := AppendDeliver([]byte("x"), &Deliver{Op: "op", Seq: 1})
	if err == nil || string(b) != "x" {
		t.Fatalf("AppendDeliver of a frame without prev or envelopes: %q, %v", b, err)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// FuzzDeliver: the deliver decoder accepts exactly what the general decoder
// does, with the same result, and the encoder writes the general encoder's
// bytes for whatever is accepted.
func FuzzDeliver(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range randomDelivers(r)[2:5] {
		b, err := Encode(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	small, _ := Encode(&Deliver{Op: "op", Seq: 7, Prev: make([]byte, HashLen), Envelopes: [][]byte{{1}, {2, 3}}, Kinds: []byte{1, 0}})
	f.Add(small)
	long := binary.BigEndian.AppendUint64([]byte{byte(TypeDeliver), 0xa4, 0x01, 0x62, 'o', 'p', 0x02, 0x1b}, 1)
	f.Add(long)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 || Type(b[0]) != TypeDeliver {
			return
		}
		got, gerr := Decode(b)
		want, werr := generalDecode(b)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("Decode error %v, general decoder %v", gerr, werr)
		}
		if gerr != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatal("Decode and the general decoder differ")
		}
		fast, err := Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, generalEncode(t, want)) {
			t.Fatal("encoders differ")
		}
	})
}
