package relay

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// rawClient is a test client speaking frames: handshake done by dialRaw.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialRaw connects and completes the handshake as id (nil: a fresh one).
func dialRaw(t *testing.T, url string, id *crypto.Identity) *rawClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if _, err := relaytest.Handshake(ws, id); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, ws: ws}
}

func (c *rawClient) write(f wire.Frame) {
	c.t.Helper()
	b, err := wire.Encode(f)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) read() wire.Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	f, err := wire.Decode(b)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// readUntil reads frames until one satisfies ok.
func (c *rawClient) readUntil(ok func(wire.Frame) bool) wire.Frame {
	c.t.Helper()
	for {
		if f := c.read(); ok(f) {
			return f
		}
	}
}

type fakePeers struct{ reports [][]byte }

func (p fakePeers) PeerGossip() [][]byte { return p.reports }

// Presence lists every subscribed connection with the highest sequence
// written to it, keeps a departed one as not connected with its last-seen
// time, merges the peers' reports, and ignores a malformed report.
func TestPresenceAndDelivery(t *testing.T) {
	peer := &wire.PresenceGossip{Node: "n2", Time: 1, Ops: []string{"op", "other"}, OpIndex: []uint32{0, 1},
		Entries: []wire.PresenceEntry{
			{Member: bytes.Repeat([]byte{9}, 32), Node: "n2", Conn: "far", Connected: true, Since: 1, LastSeen: 2, Delivered: 1},
			{Node: "n2", Conn: "elsewhere", Connected: true, Since: 1, LastSeen: 2},
		}}
	report, err := wire.EncodeGossip(peer)
	if err != nil {
		t.Fatal(err)
	}
	s, _, hs := newTestServer(t, Config{NodeID: "n1", OpenOps: true, Peers: fakePeers{reports: [][]byte{report, []byte("garbage")}}})
	aID, err := crypto.NewIdentity(rand.Reader, "a")
	if err != nil {
		t.Fatal(err)
	}
	member := aID.PublicKey()
	a, b := dialRaw(t, hs.URL, aID), dialRaw(t, hs.URL, nil)
	for _, c := range []*rawClient{a, b} {
		c.write(&wire.Subscribe{Req: 1, Op: "op", From: 1})
		c.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Subscribed); return ok })
	}
	a.write(&wire.Publish{Req: 2, Op: "op", MsgID: bytes.Repeat([]byte{1}, 16), Envelope: []byte("x")})
	for _, c := range []*rawClient{a, b} {
		c.readUntil(func(f wire.Frame) bool { d, ok := f.(*wire.Deliver); return ok && d.Seq == 1 })
	}
	ask := func() *wire.Presence {
		a.write(&wire.PresenceReq{Req: 3, Op: "op"})
		return a.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Presence); return ok }).(*wire.Presence)
	}
	// Delivery is recorded once the frame is written, which the reads
	// above have seen; the writer records it right after, so await it.
	deadline := time.Now().Add(20 * time.Second)
	var p *wire.Presence
	for {
		p = ask()
		local := 0
		for _, e := range p.Entries {
			if e.Node == "n1" && e.Connected && e.Delivered == 1 {
				local++
			}
		}
		if local == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence %+v", p.Entries)
		}
	}
	if len(p.Entries) != 3 {
		t.Fatalf("%d entries, want 2 local and 1 from the peer's op: %+v", len(p.Entries), p.Entries)
	}
	var sawMember, sawPeer bool
	for _, e := range p.Entries {
		sawMember = sawMember || bytes.Equal(e.Member, member[:])
		sawPeer = sawPeer || (e.Conn == "far" && e.Node == "n2")
	}
	if !sawMember || !sawPeer {
		t.Fatalf("member %v peer %v: %+v", sawMember, sawPeer, p.Entries)
	}
	// b leaves: it stays listed, not connected, after the connected ones.
	b.ws.Close()
	deadline = time.Now().Add(20 * time.Second)
	for {
		p = ask()
		last := p.Entries[len(p.Entries)-1]
		if !last.Connected && last.Node == "n1" && last.Delivered == 1 && last.LastSeen > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("departed entry missing: %+v", p.Entries)
		}
	}
	if g, err := s.Gossip(); err != nil {
		t.Fatal(err)
	} else if d, err := wire.DecodeGossip(g, maxGossipBytes); err != nil || d.Node != "n1" || len(d.Entries) != 2 {
		t.Fatalf("gossip %+v %v", d, err)
	}
}

func TestPresenceRetention(t *testing.T) {
	var tbl presenceTable
	now := time.Unix(1000, 0)
	tbl.add(departed{op: "a", entry: wire.PresenceEntry{Conn: "1"}, at: now}, time.Minute)
	tbl.add(departed{op: "a", entry: wire.PresenceEntry{Conn: "2"}, at: now.Add(30 * time.Second)}, time.Minute)
	tbl.add(departed{op: "a", entry: wire.PresenceEntry{Conn: "2", LastSeen: 5}, at: now.Add(40 * time.Second)}, time.Minute)
	if got := tbl.snapshot(now.Add(50*time.Second), time.Minute, "a"); len(got) != 2 || got[1].entry.LastSeen != 5 {
		t.Fatalf("before expiry %+v", got)
	}
	if got := tbl.snapshot(now.Add(61*time.Second), time.Minute, "a"); len(got) != 1 || got[0].entry.Conn != "2" {
		t.Fatalf("after expiry %+v", got)
	}
	if got := tbl.snapshot(now.Add(61*time.Second), time.Minute, "b"); len(got) != 0 {
		t.Fatalf("other op %+v", got)
	}
}

// Flash frames overtake routine frames of other operations, never frames
// of their own operation.
func TestPrioritizeKeepsPerOperationOrder(t *testing.T) {
	q := []outFrame{
		{op: "a", last: 1},
		{op: "b", last: 1},
		{op: "a", last: 2},
		{op: "c", last: 1},
		{op: "b", last: 2, class: 2},
		{op: "c", last: 2, class: 1},
		{op: "", b: []byte("hello")},
	}
	prioritize(q)
	var got []string
	for _, f := range q {
		got = append(got, f.op+string(rune('0'+f.last)))
	}
	want := "b1 b2 c1 c2 a1 a2 0"
	if strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
	routine := []outFrame{{op: "x", last: 1}, {op: "y", last: 1}, {op: "x", last: 2}}
	prioritize(routine)
	if routine[0].op != "x" || routine[1].op != "y" || routine[2].last != 2 {
		t.Fatalf("routine batch reordered: %+v", routine)
	}
}

// A connection's writer sends a queued flash frame of one operation ahead
// of routine frames of others, keeps each operation's own order, and
// records the highest sequence written per operation.
func TestWriterSendsFlashFirst(t *testing.T) {
	s, _, hs := newTestServer(t, Config{NodeID: "n1", OpenOps: true})
	cl := dialRaw(t, hs.URL, nil)
	var c *conn
	awaitCond(t, "the connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for x := range s.conns {
			c = x
		}
		return c != nil
	})
	frames := func(op string, seq uint64, n int, class uint8) []outFrame {
		envs := make([][]byte, n)
		classes := make([]uint8, n)
		for i := range envs {
			envs[i] = []byte(fmt.Sprintf("%s-%d", op, seq+uint64(i)))
			classes[i] = class
		}
		var out []outFrame
		for i := range envs { // one frame per entry
			f, err := deliverFrames(op, seq+uint64(i), [HashLen]byte{}, envs[i:i+1], nil, classes[i:i+1], deliverTarget, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, f...)
		}
		return out
	}
	// Hold the writer off while the queue fills, as a busy connection would.
	awaitCond(t, "an idle writer", func() bool {
		c.mu.Lock()
		if c.writing {
			c.mu.Unlock()
			return false
		}
		c.writing = true
		c.enqueueLocked(frames("a", 1, 3, 0)...)
		c.enqueueLocked(frames("b", 1, 1, 2)...)
		c.enqueueLocked(frames("a", 4, 1, 0)...)
		c.enqueueLocked(frames("c", 1, 1, 1)...)
		c.writing = false
		c.enqueueLocked(frames("d", 1, 1, 0)...) // starts the writer on the whole queue
		c.mu.Unlock()
		return true
	})
	var got []string
	for len(got) < 7 {
		if d, ok := cl.read().(*wire.Deliver); ok {
			got = append(got, string(d.Envelopes[0]))
		}
	}
	if want := "b-1 c-1 a-1 a-2 a-3 a-4 d-1"; strings.Join(got, " ") != want {
		t.Fatalf("written %v, want %s", got, want)
	}
	awaitCond(t, "the deliveries recorded", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.delivered["a"] == 4 && c.delivered["b"] == 1 && c.delivered["d"] == 1
	})
}
