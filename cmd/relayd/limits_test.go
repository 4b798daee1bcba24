package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// Raw WebSocket tests of the connection limits (issue 5, items 6 and 7):
// each is enforced with its documented code, another connection carries
// on, and no log changes.

// limitNode starts an in-process node with OpenOps (these tests publish
// raw entries) and the settings tweak makes.
func limitNode(t *testing.T, tweak func(*config)) *node {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	if tweak != nil {
		tweak(&cfg)
	}
	n := startNode(t, cfg)
	t.Cleanup(func() { n.close() })
	return n
}

// awaitCond polls cond (state of the node under test, which offers no
// event to wait on) until it holds or the deadline passes.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func limitCount(n *node, limit string) uint64 { return n.relay.Stats().Limits[limit] }

func TestOversizeFrameWithConfiguredLimit(t *testing.T) {
	n := limitNode(t, func(c *config) { c.MaxFrame = 64 << 10 })
	good := dialRaw(t, n)
	good.publish("op", newMsgID(), []byte("one"))
	bad := dialRaw(t, n)
	big := mustEncode(t, &wire.Publish{Req: 1, Op: "op", MsgID: newMsgID(), Envelope: make([]byte, 64<<10)})
	bad.sendBytes(big)
	if _, err := bad.tryRead(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want close 1009, got %v", err)
	}
	awaitCond(t, "frame_size counted", func() bool { return limitCount(n, "frame_size") == 1 })
	if h := n.cluster.Head("op"); h.Last != 1 {
		t.Fatalf("head %d after the oversize frame", h.Last)
	}
	// Just under the limit is fine, on another connection.
	if a := good.publish("op", newMsgID(), make([]byte, 60<<10)); a.Seq != 2 {
		t.Fatalf("ack %+v", a)
	}
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	const burst = 20
	n := limitNode(t, func(c *config) { c.MsgRate = 0.01; c.MsgBurst = burst })
	other := dialRaw(t, n)
	other.publish("op", newMsgID(), []byte("before"))
	head := n.cluster.Head("op")

	flood := dialRaw(t, n)
	// Use up the bucket with frames that change nothing, then publish.
	for range burst {
		flood.send(&wire.Unsubscribe{Op: "op"})
	}
	// Exactly as many as make the node close (more would be unread when it
	// closes, and the kernel would reset the connection).
	for i := range burst {
		flood.send(&wire.Publish{Req: uint64(i + 1), Op: "op", MsgID: newMsgID(), Envelope: []byte("flood")})
	}
	limited := 0
	for {
		f, err := flood.tryRead()
		if err != nil {
			if !websocket.IsCloseError(err, wire.CloseRateLimited) {
				t.Fatalf("want close %d, got %v", wire.CloseRateLimited, err)
			}
			break
		}
		e, ok := f.(*wire.Error)
		if !ok || e.Code != wire.CodeRateLimited {
			t.Fatalf("got %#v, want rate_limited", f)
		}
		limited++
	}
	if limited != burst {
		t.Fatalf("%d rate_limited errors before the close, want %d", limited, burst)
	}
	if n.cluster.Head("op") != head {
		t.Fatal("the flood changed the log")
	}
	if limitCount(n, "rate_closed") != 1 || limitCount(n, "rate_limited") != burst {
		t.Fatalf("limits %v", n.relay.Stats().Limits)
	}
	// The other connection has its own bucket and carries on.
	if a := other.publish("op", newMsgID(), []byte("after")); a.Seq != head.Last+1 {
		t.Fatalf("ack %+v", a)
	}
}

// dialSmallBuffer connects with a small socket receive buffer (set before
// connecting, so TCP does not grow it), so that a client that stops reading
// backs up into the node quickly.
func dialSmallBuffer(t *testing.T, n *node) *rawConn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	}}).DialContext}
	ws, _, err := d.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if _, err := relaytest.Handshake(ws, nil); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, ws: ws}
}

func TestSlowReaderIsDisconnectedAndResumes(t *testing.T) {
	const queue = 64 << 10
	n := limitNode(t, func(c *config) { c.QueueBytes = queue; c.SlowConsumerTimeout = 500 * time.Millisecond })
	slow := dialSmallBuffer(t, n)
	slow.subscribe("feed", 1)
	pub := dialRaw(t, n)
	entry := make([]byte, 64<<10)
	var published uint64
	maxQueued := int64(0)
	for limitCount(n, "slow_consumer") == 0 {
		if published == 400 {
			t.Fatalf("no slow consumer after %d entries of 64 KiB; limits %v", published, n.relay.Stats().Limits)
		}
		entry[0], entry[1] = byte(published), byte(published>>8)
		a := pub.publish("feed", newMsgID(), entry)
		published = a.Seq
		maxQueued = max(maxQueued, n.relay.Stats().QueueBytes)
	}
	// Node memory stayed bounded by the queue limit (plus one log read and
	// one entry), however much was published.
	if bound := int64(queue + 512<<10 + 2*len(entry)); maxQueued > bound {
		t.Fatalf("outbound queues reached %d bytes, bound %d", maxQueued, bound)
	}
	// The slow reader now reads what reached it, in order, then the
	// slow_consumer error and close 4002.
	next := uint64(1)
	for {
		f, err := slow.tryRead()
		if err != nil {
			if !websocket.IsCloseError(err, wire.CloseSlowConsumer) {
				t.Fatalf("want close %d, got %v", wire.CloseSlowConsumer, err)
			}
			break
		}
		switch f := f.(type) {
		case *wire.Deliver:
			if f.Seq != next {
				t.Fatalf("deliver at %d, want %d", f.Seq, next)
			}
			next += uint64(len(f.Envelopes))
		case *wire.Error:
			if f.Code != wire.CodeSlowConsumer {
				t.Fatalf("error %v", f)
			}
		}
	}
	if next > published {
		t.Fatalf("the slow reader got everything (%d); nothing to resume", next-1)
	}
	// It resumes from its sequence on a new connection: no gap, no duplicate.
	again := dialRaw(t, n)
	again.subscribe("feed", next)
	got := again.collect("feed", next, published)
	if uint64(len(got)) != published-next+1 || got[len(got)-1][0] != byte(published-1) {
		t.Fatal("resumed entries differ")
	}
	if n.cluster.Head("feed").Last != published {
		t.Fatal("the log changed")
	}
}

func TestWrongOriginRefused(t *testing.T) {
	n := limitNode(t, func(c *config) { c.Origins = []string{"https://centre.example"} })
	h := http.Header{"Origin": {"https://evil.example"}}
	ws, resp, err := websocket.DefaultDialer.Dial(n.wsURL(), h)
	if err == nil {
		ws.Close()
		t.Fatal("upgrade with a wrong Origin accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("want 403, got %v %v", resp, err)
	}
	if limitCount(n, "origin") != 1 {
		t.Fatalf("limits %v", n.relay.Stats().Limits)
	}
	// The allowed Origin, and non-browser clients, get in.
	ws, _, err = websocket.DefaultDialer.Dial(n.wsURL(), http.Header{"Origin": {"https://centre.example"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := relaytest.Handshake(ws, nil); err != nil {
		t.Fatal(err)
	}
	dialRaw(t, n).publish("op", newMsgID(), []byte("x"))
}

func TestIdleConnectionClosed4003(t *testing.T) {
	n := limitNode(t, func(c *config) {
		c.relay.PingInterval = 100 * time.Millisecond
		c.relay.IdleTimeout = time.Second
	})
	idle := dialRaw(t, n) // never reads, so never answers a ping
	alive := dialRaw(t, n)
	frames := make(chan wire.Frame, 16)
	go func() { // reading answers pings
		defer close(frames)
		for {
			f, err := alive.tryRead()
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	awaitCond(t, "the idle connection closed", func() bool { return limitCount(n, "idle") >= 1 })
	idle.ws.SetPingHandler(func(string) error { return nil }) // still not answering
	if _, err := idle.tryRead(); !websocket.IsCloseError(err, wire.CloseIdle) {
		t.Fatalf("want close %d, got %v", wire.CloseIdle, err)
	}
	// The reading connection answered pings and is still served, past the
	// idle timeout since it last sent a frame.
	alive.send(&wire.Publish{Req: 7, Op: "op", MsgID: newMsgID(), Envelope: []byte("x")})
	f, ok := <-frames
	if a, isAck := f.(*wire.Ack); !ok || !isAck || a.Req != 7 {
		t.Fatalf("alive connection got %#v", f)
	}
	if limitCount(n, "idle") != 1 {
		t.Fatalf("limits %v", n.relay.Stats().Limits)
	}
	alive.ws.Close()
	for range frames {
	}
}

// dialFrom connects from a given local address.
func dialFrom(n *node, local string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
	return d.Dial(n.wsURL(), nil)
}

func TestConnectionsPerAddressCapped(t *testing.T) {
	n := limitNode(t, func(c *config) { c.MaxConnsPerAddr = 3 })
	var conns []*websocket.Conn
	for range 3 {
		ws, _, err := dialFrom(n, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		conns = append(conns, ws)
	}
	ws, resp, err := dialFrom(n, "127.0.0.1")
	if err == nil {
		ws.Close()
		t.Fatal("fourth connection from one address accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("want 429, got %v %v", resp, err)
	}
	// Another source address is not affected.
	ws, _, err = dialFrom(n, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relaytest.Handshake(ws, nil); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	// Closing one frees a slot.
	conns[0].Close()
	awaitCond(t, "the closed connection released", func() bool { return n.relay.Stats().Conns <= 2 })
	ws, _, err = dialFrom(n, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	if limitCount(n, "conns_per_addr") != 1 {
		t.Fatalf("limits %v", n.relay.Stats().Limits)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	n := limitNode(t, func(c *config) { c.ReadHeaderTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", n.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\n"); err != nil { // headers never finish
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the node kept a connection with unfinished headers open")
	}
	if len(b) > 0 && !bytes.Contains(b, []byte("408")) && !strings.Contains(string(b), "400") {
		t.Fatalf("unexpected answer %q", b)
	}
	// Another client is served.
	dialRaw(t, n).publish("op", newMsgID(), []byte("x"))
}

func TestMaxOperationsPerConnection(t *testing.T) {
	n := limitNode(t, func(c *config) { c.MaxOps = 2 })
	c := dialRaw(t, n)
	c.subscribe("a", 1)
	c.publish("b", newMsgID(), []byte("x"))
	c.send(&wire.Subscribe{Req: 5, Op: "c", From: 1})
	if e := c.expectRefusal(wire.CodeLimit, 0); e.Req != 5 {
		t.Fatalf("refusal %+v", e)
	}
	c.send(&wire.Publish{Req: 6, Op: "d", MsgID: newMsgID(), Envelope: []byte("x")})
	if e := c.expectRefusal(wire.CodeLimit, 0); e.Req != 6 {
		t.Fatalf("refusal %+v", e)
	}
	if n.cluster.Head("d").Last != 0 {
		t.Fatal("the refused publish was stored")
	}
	// Operations already in use still work, and so does another connection.
	if a := c.publish("a", newMsgID(), []byte("y")); a.Seq != 1 {
		t.Fatalf("ack %+v", a)
	}
	dialRaw(t, n).publish("d", newMsgID(), []byte("x"))
	if limitCount(n, "max_ops") != 2 {
		t.Fatalf("limits %v", n.relay.Stats().Limits)
	}
}

// The limits set by flags on a relayd process are enforced from outside,
// with their codes, counted in /metrics, and leave the log alone.
func TestLimitFlagsOnProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a relayd process")
	}
	listen := freePort(t)
	startProcArgs(t, t.TempDir(), listen, freePort(t), "n1", "--open-ops",
		"--max-frame-bytes", "65536", "--msg-rate", "0.01", "--msg-burst", "3", "--allowed-origins", "https://centre.example")
	good, err := dialAddr(t, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer good.ws.Close()
	good.publish("op", newMsgID(), []byte("one"))

	// Oversize frame: 1009.
	big, err := dialAddr(t, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer big.ws.Close()
	big.sendBytes(mustEncode(t, &wire.Publish{Req: 1, Op: "op", MsgID: newMsgID(), Envelope: make([]byte, 64<<10)}))
	if _, err := big.tryRead(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want close 1009, got %v", err)
	}
	// Flood: rate_limited, then 4005.
	flood, err := dialAddr(t, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.ws.Close()
	for i := range 6 {
		flood.send(&wire.Publish{Req: uint64(i + 1), Op: "op", MsgID: newMsgID(), Envelope: []byte("flood")})
	}
	for {
		f, err := flood.tryRead()
		if err != nil {
			if !websocket.IsCloseError(err, wire.CloseRateLimited) {
				t.Fatalf("want close %d, got %v", wire.CloseRateLimited, err)
			}
			break
		}
		switch f := f.(type) {
		case *wire.Ack: // within the burst of 3
		case *wire.Error:
			if f.Code != wire.CodeRateLimited {
				t.Fatalf("error %v", f)
			}
		}
	}
	// Wrong Origin: 403.
	if ws, resp, err := websocket.DefaultDialer.Dial("ws://"+listen+"/ws", http.Header{"Origin": {"https://evil.example"}}); err == nil {
		ws.Close()
		t.Fatal("wrong Origin accepted")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("want 403, got %v", err)
	}
	m := scrapeAddr(t, listen)
	for _, series := range []string{`liaison_limit_events_total{limit="frame_size"}`, `liaison_limit_events_total{limit="rate_closed"}`, `liaison_limit_events_total{limit="origin"}`} {
		if m[series] != 1 {
			t.Errorf("%s = %v, want 1", series, m[series])
		}
	}
	// The good connection carries on; the log holds its entries and the
	// flood's first three (within its burst), nothing more.
	if a := good.publish("op", newMsgID(), []byte("two")); a.Seq != 5 {
		t.Fatalf("ack %+v, want seq 5", a)
	}
}
