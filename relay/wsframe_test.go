package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte, mask [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

// recordSink records what a frameParser hands over; stopAfter > 0 stops
// it after that many calls.
type recordSink struct {
	got       []string
	stopAfter int
	longest   int // bytes of the longest message
}

func (r *recordSink) onMessage(text bool, data []byte) bool {
	r.longest = max(r.longest, len(data))
	r.got = append(r.got, fmt.Sprintf("msg text=%v %q", text, data))
	return r.stopAfter == 0 || len(r.got) < r.stopAfter
}

func (r *recordSink) onControl(op byte, payload []byte) bool {
	r.got = append(r.got, fmt.Sprintf("ctl %d %q", op, payload))
	return r.stopAfter == 0 || len(r.got) < r.stopAfter
}

// feedChunks feeds b to a fresh parser in pieces of the given size.
func feedChunks(b []byte, size, limit int) (*frameParser, []string, error) {
	p, sink, err := feedSink(b, size, limit)
	return p, sink.got, err
}

func feedSink(b []byte, size, limit int) (*frameParser, *recordSink, error) {
	var p frameParser
	var sink recordSink
	for len(b) > 0 {
		n := min(size, len(b))
		ok, err := p.feed(b[:n], limit, &sink)
		if err != nil {
			return &p, &sink, err
		}
		if !ok {
			return &p, &sink, errors.New("stopped")
		}
		b = b[n:]
	}
	return &p, &sink, nil
}

func TestFrameParserMessages(t *testing.T) {
	m := [4]byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("x"), 70_000)
	mid := bytes.Repeat([]byte("y"), 300)
	var stream []byte
	stream = append(stream, clientFrame(true, opBinary, []byte("hello"), m)...)
	stream = append(stream, clientFrame(true, opText, []byte("text"), m)...)
	stream = append(stream, clientFrame(true, opBinary, nil, m)...)
	// A fragmented message with a ping between its fragments.
	stream = append(stream, clientFrame(false, opBinary, []byte("frag"), m)...)
	stream = append(stream, clientFrame(true, opPing, []byte("p"), [4]byte{9, 9, 9, 9})...)
	stream = append(stream, clientFrame(false, opContinuation, []byte("men"), m)...)
	stream = append(stream, clientFrame(true, opContinuation, []byte("ted"), m)...)
	stream = append(stream, clientFrame(true, opBinary, mid, m)...)
	stream = append(stream, clientFrame(true, opBinary, big, m)...)
	stream = append(stream, clientFrame(true, opPong, nil, m)...)
	stream = append(stream, clientFrame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}, m)...)
	want := []string{
		`msg text=false "hello"`,
		`msg text=true "text"`,
		`msg text=false ""`,
		`ctl 9 "p"`,
		`msg text=false "fragmented"`,
		fmt.Sprintf("msg text=false %q", mid),
		fmt.Sprintf("msg text=false %q", big),
		`ctl 10 ""`,
		`ctl 8 "\x03\xe8bye"`,
	}
	for _, size := range []int{1, 2, 3, 7, 100, 4096, len(stream)} {
		p, got, err := feedChunks(stream, size, 100_000)
		if err != nil {
			t.Fatalf("chunks of %d: %v", size, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunks of %d: got %d records, want %d", size, len(got), len(want))
		}
		if !p.idle() {
			t.Fatalf("chunks of %d: parser not idle after whole frames", size)
		}
	}
	// Mid-frame, the parser is not idle.
	var p frameParser
	if _, err := p.feed(stream[:3], 100, &recordSink{}); err != nil || p.idle() {
		t.Fatalf("partial header: idle %v err %v", p.idle(), err)
	}
}

func TestFrameParserStops(t *testing.T) {
	m := [4]byte{5, 6, 7, 8}
	stream := append(clientFrame(true, opBinary, []byte("a"), m), clientFrame(true, opBinary, []byte("b"), m)...)
	var p frameParser
	sink := &recordSink{stopAfter: 1}
	ok, err := p.feed(stream, 100, sink)
	if ok || err != nil || len(sink.got) != 1 {
		t.Fatalf("ok %v err %v got %v: want a stop after the first message", ok, err, sink.got)
	}
}

func TestFrameParserRefuses(t *testing.T) {
	m := [4]byte{1, 1, 1, 1}
	unmasked := clientFrame(true, opBinary, []byte("x"), m)
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, opBinary, []byte("x"), m)
	rsv[0] |= 0x40
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name  string
		in    []byte
		limit int
		want  error
	}{
		{"unmasked", unmasked, 100, errProtocol},
		{"reserved bits", rsv, 100, errProtocol},
		{"unknown opcode", clientFrame(true, 0x3, nil, m), 100, errProtocol},
		{"long control", clientFrame(true, opPing, make([]byte, 126), m), 1000, errProtocol},
		{"fragmented control", clientFrame(false, opPing, nil, m), 100, errProtocol},
		{"continuation first", clientFrame(true, opContinuation, []byte("x"), m), 100, errProtocol},
		{"data inside a message", cat(clientFrame(false, opBinary, []byte("x"), m), clientFrame(true, opBinary, []byte("y"), m)), 100, errProtocol},
		{"close of one byte", clientFrame(true, opClose, []byte{3}, m), 100, errProtocol},
		{"invalid close code", clientFrame(true, opClose, []byte{0x03, 0xed}, m), 100, errProtocol},
		{"close reason not utf-8", clientFrame(true, opClose, []byte{0x03, 0xe8, 0xff}, m), 100, errProtocol},
		{"frame over the limit", clientFrame(true, opBinary, make([]byte, 101), m), 100, errReadLimit},
		{"message over the limit", cat(clientFrame(false, opBinary, make([]byte, 60), m), clientFrame(true, opContinuation, make([]byte, 41), m)), 100, errReadLimit},
		{"huge length", append([]byte{0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, m[:]...), 100, errReadLimit},
	} {
		_, got, err := feedChunks(tc.in, len(tc.in), tc.limit)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if len(got) != 0 {
			t.Errorf("%s: handed over %v", tc.name, got)
		}
	}
	// At the limit exactly is fine.
	if _, got, err := feedChunks(clientFrame(true, opBinary, make([]byte, 100), m), 7, 100); err != nil || len(got) != 1 {
		t.Fatalf("frame at the limit: %v %v", got, err)
	}
}

// A header announcing a large message does not make the parser allocate
// it: the buffer grows with the bytes that arrive.
func TestFrameParserGrowsWithData(t *testing.T) {
	m := [4]byte{1, 2, 3, 4}
	f := clientFrame(true, opBinary, make([]byte, 4<<20), m)
	var p frameParser
	if _, err := p.feed(f[:100], 8<<20, &recordSink{}); err != nil {
		t.Fatal(err)
	}
	if c := cap(p.msg); c > maxPrealloc {
		t.Fatalf("holds %d bytes for a 4 MiB header and 86 bytes of payload", c)
	}
	sink := &recordSink{}
	if _, err := p.feed(f[100:], 8<<20, sink); err != nil || sink.longest != 4<<20 {
		t.Fatalf("message of %d bytes, err %v", sink.longest, err)
	}
}

func TestAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{65535, []byte{0x82, 126, 0xff, 0xff}},
		{65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendHeader(nil, opBinary, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("%d: % x, want % x", tc.n, got, tc.want)
		}
	}
}

// FuzzFrameParser: any bytes, split anywhere, parse without panicking,
// never hand over a message over the limit, and give the same result as
// when fed whole.
func FuzzFrameParser(f *testing.F) {
	m := [4]byte{1, 2, 3, 4}
	f.Add(clientFrame(true, opBinary, []byte("hello"), m), 3)
	f.Add(append(clientFrame(false, opBinary, []byte("a"), m), clientFrame(true, opContinuation, []byte("b"), m)...), 7)
	f.Add(clientFrame(true, opClose, []byte{0x03, 0xe8}, m), 1)
	f.Add(clientFrame(true, opBinary, make([]byte, 300), m), 200)
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 1, 0}, 5)
	const limit = 256
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		_, whole, werr := feedSink(b, len(b)+1, limit)
		if split < 1 {
			split = 1
		}
		_, parts, perr := feedSink(b, split, limit)
		if fmt.Sprint(whole.got) != fmt.Sprint(parts.got) || (werr == nil) != (perr == nil) {
			t.Fatalf("whole %v %v, in pieces of %d %v %v", whole.got, werr, split, parts.got, perr)
		}
		if whole.longest > limit {
			t.Fatalf("message of %d bytes over the limit", whole.longest)
		}
	})
}

// unmask gives the same bytes as the byte-by-byte definition (RFC 6455,
// 5.3) whatever the lengths and the position in the mask it starts at.
func TestUnmaskMatchesDefinition(t *testing.T) {
	mask := [4]byte{0x12, 0x9a, 0x3c, 0xf0}
	data := make([]byte, 100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for split := 0; split <= len(data); split++ {
		for _, chunk := range []int{1, 3, 8, 13, 64} {
			p := frameParser{mask: mask}
			got := append([]byte(nil), data...)
			p.unmask(got[:split])
			for rest := got[split:]; len(rest) > 0; {
				n := min(chunk, len(rest))
				p.unmask(rest[:n])
				rest = rest[n:]
			}
			for i := range data {
				if want := data[i] ^ mask[i%4]; got[i] != want {
					t.Fatalf("split %d chunk %d: byte %d is %#x, want %#x", split, chunk, i, got[i], want)
				}
			}
		}
	}
}

// nopSink takes every message and control frame.
type nopSink struct{}

func (nopSink) onMessage(bool, []byte) bool { return true }
func (nopSink) onControl(byte, []byte) bool { return true }

// BenchmarkFrameParser parses small client messages (a publish's size)
// as a polled reader does: one read's worth of whole frames at a time.
// Reproduce: go test -run '^$' -bench FrameParser -benchmem ./relay
func BenchmarkFrameParser(b *testing.B) {
	m := [4]byte{1, 2, 3, 4}
	var stream []byte
	for range 64 {
		stream = append(stream, clientFrame(true, opBinary, make([]byte, 300), m)...)
	}
	var p frameParser
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.feed(stream, 1<<20, nopSink{}); err != nil {
			b.Fatal(err)
		}
	}
}
