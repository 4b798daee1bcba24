package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"liaison/crypto"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freePort(t testing.TB) string {
	t.Helper()
	return freePortOn(t, "127.0.0.1")
}

// freePortOn returns a free address on host for a node to bind.
func freePortOn(t testing.TB, host string) string {
	t.Helper()
	for range 200 {
		// Below the kernel's ephemeral range (32768-60999 here), so an
		// outgoing connection of another test cannot take the port between
		// this check and the node binding it.
		addr := net.JoinHostPort(host, strconv.Itoa(10000+mrand.IntN(22000)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port found")
	return ""
}

// testConfig is a one-node configuration for in-process tests. It sets
// OpenOps because most tests publish raw (non-roster) entries; tests of
// access control turn it off.
func testConfig(t testing.TB, dir string) config {
	return config{
		OpenOps:         true,
		DataDir:         dir,
		Listen:          "127.0.0.1:0",
		RaftListen:      freePort(t),
		NodeID:          "n1",
		LogFormat:       "text",
		LogLevel:        "info",
		electionTimeout: 200 * time.Millisecond,
	}
}

// startNode runs a relayd node in-process on real loopback sockets and real
// files, and waits until it is ready.
func startNode(t testing.TB, cfg config) *node {
	t.Helper()
	n, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.cluster.WaitLeader(ctx); err != nil {
		n.close()
		t.Fatal(err)
	}
	return n
}

func (n *node) wsURL() string { return "ws://" + n.addr.String() + "/ws" }

// rawConn is a protocol-level test client: a real WebSocket speaking wire
// frames by hand.
type rawConn struct {
	t  testing.TB
	ws *websocket.Conn
}

// dialRaw connects to n and authenticates with a fresh identity.
func dialRaw(t testing.TB, n *node) *rawConn {
	t.Helper()
	return dialRawAs(t, n.addr.String(), nil)
}

// dialRawAs connects to the node at addr and authenticates as id (a fresh
// identity when nil) through relaytest.Handshake, the one handshake helper
// of the raw-frame tests.
func dialRawAs(t testing.TB, addr string, id *crypto.Identity) *rawConn {
	t.Helper()
	c, err := dialAddrAs(t, addr, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ws.Close() })
	return c
}

func (c *rawConn) send(f wire.Frame) {
	c.t.Helper()
	if err := sendFrame(c.ws, f); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) sendBytes(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) read() wire.Frame {
	c.t.Helper()
	f, err := c.tryRead()
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *rawConn) tryRead() (wire.Frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	return wire.Decode(b)
}

// subscribe subscribes to op from a sequence and returns the server's
// subscribed answer, failing the test on anything else.
func (c *rawConn) subscribe(op string, from uint64) *wire.Subscribed {
	c.t.Helper()
	c.send(&wire.Subscribe{Req: 1, Op: op, From: from})
	sub, ok := c.read().(*wire.Subscribed)
	if !ok {
		c.t.Fatalf("subscribe to %s: no subscribed", op)
	}
	return sub
}

func newMsgID() []byte {
	b := make([]byte, wire.MsgIDLen)
	_, _ = rand.Read(b)
	return b
}

// publish sends one publish and returns its ack, skipping other frames.
func (c *rawConn) publish(op string, id, env []byte) *wire.Ack {
	c.t.Helper()
	c.send(&wire.Publish{Req: 1, Op: op, MsgID: id, Envelope: env})
	for {
		switch f := c.read().(type) {
		case *wire.Ack:
			return f
		case *wire.Error:
			c.t.Fatalf("publish: %v", f)
		}
	}
}

// collect reads deliver frames of op until it holds entries from..last,
// failing on any gap, duplicate or break in the hash chain.
func (c *rawConn) collect(op string, from, last uint64) [][]byte {
	c.t.Helper()
	var out [][]byte
	next := from
	var chain [32]byte
	haveChain := false
	for next <= last {
		d, ok := c.read().(*wire.Deliver)
		if !ok {
			continue
		}
		if d.Op != op || d.Seq != next {
			c.t.Fatalf("deliver %s@%d, want %s@%d (gap or duplicate)", d.Op, d.Seq, op, next)
		}
		if haveChain && !bytes.Equal(d.Prev, chain[:]) {
			c.t.Fatalf("deliver at %d: prev does not continue the chain", d.Seq)
		}
		copy(chain[:], d.Prev)
		for _, e := range d.Envelopes {
			chain = sha256.Sum256(append(chain[:], e...))
			out = append(out, e)
			next++
		}
		haveChain = true
	}
	if next != last+1 {
		c.t.Fatalf("delivered up to %d, want %d", next-1, last)
	}
	return out
}

func TestPublishAckAndDedupe(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	c := dialRaw(t, n)
	id := newMsgID()
	a := c.publish("op-1", id, []byte("hello"))
	if a.Seq != 1 || a.Dup {
		t.Fatalf("first ack %+v", a)
	}
	a = c.publish("op-1", id, []byte("hello again"))
	if a.Seq != 1 || !a.Dup {
		t.Fatalf("re-send with the same msgid: %+v, want seq 1 dup", a)
	}
	if h := n.cluster.Head("op-1"); h.Last != 1 {
		t.Fatalf("log holds %d entries, want 1", h.Last)
	}
	a = c.publish("op-1", newMsgID(), []byte("second"))
	if a.Seq != 2 || a.Dup {
		t.Fatalf("second ack %+v", a)
	}
}

func TestMalformedFrameClosesOnlyItsConnection(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	good := dialRaw(t, n)
	good.publish("op", newMsgID(), []byte("one"))
	good.subscribe("op", 1)
	good.collect("op", 1, 1)

	cases := map[string][]byte{
		"garbage":          []byte("\x20not cbor at all"),
		"unknown type":     {0x55, 0xa0},
		"one byte":         {byte(wire.TypePublish)},
		"server frame":     mustEncode(t, &wire.Ack{Req: 1, Op: "op", Seq: 1}),
		"bad op name":      append([]byte{byte(wire.TypePublish)}, mustCBOR(t, map[int]any{1: 1, 2: "../etc", 3: newMsgID(), 5: []byte("x")})...),
		"short msgid":      append([]byte{byte(wire.TypePublish)}, mustCBOR(t, map[int]any{1: 1, 2: "op", 3: []byte{1, 2}, 5: []byte("x")})...),
		"duplicate key":    {byte(wire.TypeSubscribe), 0xa2, 0x01, 0x01, 0x01, 0x02},
		"trailing garbage": append(mustEncode(t, &wire.Subscribe{Req: 1, Op: "op", From: 1}), 0x00),
		"unknown class":    append([]byte{byte(wire.TypePublish)}, mustCBOR(t, map[int]any{1: 1, 2: "op", 3: newMsgID(), 4: 9, 5: []byte("x")})...),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			bad := dialRaw(t, n)
			bad.sendBytes(frame)
			f, err := bad.tryRead()
			if err != nil {
				t.Fatalf("want an error frame first, got %v", err)
			}
			e, ok := f.(*wire.Error)
			if !ok || e.Code != wire.CodeBadFrame {
				t.Fatalf("got %#v, want bad_frame error", f)
			}
			_, err = bad.tryRead()
			if !websocket.IsCloseError(err, wire.CloseBadFrame) {
				t.Fatalf("want close %d, got %v", wire.CloseBadFrame, err)
			}
		})
	}
	t.Run("text frame", func(t *testing.T) {
		bad := dialRaw(t, n)
		if err := bad.ws.WriteMessage(websocket.TextMessage, []byte(`{"publish":1}`)); err != nil {
			t.Fatal(err)
		}
		if e, ok := bad.read().(*wire.Error); !ok || e.Code != wire.CodeBadFrame {
			t.Fatal("text frame not answered with bad_frame")
		}
	})
	if h := n.cluster.Head("op"); h.Last != 1 {
		t.Fatalf("malformed frames changed the log: head %d", h.Last)
	}
	// The good connection is untouched: it still publishes and receives.
	good.send(&wire.Publish{Req: 3, Op: "op", MsgID: newMsgID(), Envelope: []byte("two")})
	if got := good.collect("op", 2, 2); string(got[0]) != "two" {
		t.Fatalf("good connection got %q", got[0])
	}
}

func TestOversizeFrameCloses1009(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	c := dialRaw(t, n)
	big := make([]byte, wire.MaxClientFrame+1)
	big[0] = byte(wire.TypePublish)
	if err := c.ws.WriteMessage(websocket.BinaryMessage, big); err != nil {
		t.Fatal(err)
	}
	_, err := c.tryRead()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want close 1009, got %v", err)
	}
	if h := n.cluster.Head("op"); h.Last != 0 {
		t.Fatal("oversize frame changed a log")
	}
}

func TestRequestBeforeAuthIsRefused(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &rawConn{t: t, ws: ws}
	if _, ok := c.read().(*wire.Hello); !ok {
		t.Fatal("no hello")
	}
	c.send(&wire.Publish{Req: 1, Op: "op", MsgID: newMsgID(), Envelope: []byte("x")})
	if e, ok := c.read().(*wire.Error); !ok || e.Code != wire.CodeUnauthenticated {
		t.Fatal("publish before auth not refused with unauthenticated")
	}
	if _, err := c.tryRead(); !websocket.IsCloseError(err, wire.CloseAuth) {
		t.Fatalf("want close %d, got %v", wire.CloseAuth, err)
	}
	if n.cluster.Head("op").Last != 0 {
		t.Fatal("unauthenticated publish was stored")
	}
}

// A subscriber that asks from N while entries keep committing receives N,
// N+1, ... through the switch from stored to live with no gap or duplicate.
func TestSubscribeWhileCommitting(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	pub := dialRaw(t, n)
	const before, during = 300, 700
	for i := 0; i < before; i++ {
		pub.send(&wire.Publish{Req: uint64(i + 1), Op: "live", MsgID: newMsgID(), Envelope: fmt.Appendf(nil, "m%d", i+1)})
	}
	waitHead(t, n, "live", before)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := before; i < before+during; i++ {
			if err := sendFrame(pub.ws, &wire.Publish{Req: uint64(i + 1), Op: "live", MsgID: newMsgID(), Envelope: fmt.Appendf(nil, "m%d", i+1)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	subs := []*rawConn{dialRaw(t, n), dialRaw(t, n), dialRaw(t, n)}
	froms := []uint64{1, 150, 299}
	for i, s := range subs {
		s.send(&wire.Subscribe{Req: 1, Op: "live", From: froms[i]})
	}
	for i, s := range subs {
		got := s.collect("live", froms[i], before+during)
		for j, e := range got {
			if want := fmt.Sprintf("m%d", froms[i]+uint64(j)); string(e) != want {
				t.Fatalf("subscriber %d: entry %d is %q, want %q", i, froms[i]+uint64(j), e, want)
			}
		}
	}
	wg.Wait()
}

// A subscriber that stops reading is switched to reading from the log; when
// it reads again it gets everything in order.
func TestSlowConsumerCatchesUpFromLog(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.relay.QueueBytes = 16 << 10
	// Neither connection reads until every entry is in: on a loaded machine
	// that can take longer than the default slow-consumer timeout.
	cfg.relay.SlowConsumerTimeout = 10 * time.Minute
	n := startNode(t, cfg)
	defer n.close()
	sub := dialRaw(t, n)
	sub.subscribe("slow", 1)
	pub := dialRaw(t, n)
	const total = 8000
	env := bytes.Repeat([]byte("x"), 1024)
	for i := 0; i < total; i++ {
		pub.send(&wire.Publish{Req: uint64(i + 1), Op: "slow", MsgID: newMsgID(), Envelope: env})
	}
	waitHead(t, n, "slow", total)
	if lagged := n.relay.Stats().Lagged; lagged == 0 {
		t.Fatal("the subscriber never fell behind its queue: the test did not exercise the switch to the log")
	}
	if got := sub.collect("slow", 1, total); len(got) != total {
		t.Fatalf("got %d entries", len(got))
	}
}

// waitHead polls the node's log until op reaches last: there is no event to
// await from outside the node for entries published without waiting for acks.
func waitHead(t testing.TB, n *node, op string, last uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.cluster.Head(op).Last < last {
		if time.Now().After(deadline) {
			t.Fatalf("head of %s stuck at %d, want %d", op, n.cluster.Head(op).Last, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sendFrame(ws *websocket.Conn, f wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	return ws.WriteMessage(websocket.BinaryMessage, b)
}

func mustEncode(t testing.TB, f wire.Frame) []byte {
	b, err := wire.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
