package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// Tests of the two readers: polled (Linux, plain TCP) and goroutine (TLS,
// other platforms, and here noPoll). Real WebSocket connections on
// loopback; goleak (TestMain) checks that every goroutine ends.

// readerModes runs fn once per reader the platform has.
func readerModes(t *testing.T, fn func(t *testing.T, noPoll bool)) {
	modes := []bool{true}
	if err := canPoll(); err == nil {
		modes = append(modes, false)
	} else {
		t.Logf("no poller here (%v): goroutine reader only", err)
	}
	for _, noPoll := range modes {
		name := "polled"
		if noPoll {
			name = "goroutine"
		}
		t.Run(name, func(t *testing.T) { fn(t, noPoll) })
	}
}

// modeServer starts a relay for one reader mode; the returned URL is its
// WebSocket endpoint.
func modeServer(t *testing.T, cfg Config, noPoll bool) (*Server, string) {
	t.Helper()
	s, _, hs := newTestServer(t, cfg)
	s.mu.Lock()
	s.noPoll = noPoll
	s.mu.Unlock()
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

func dialWS(t *testing.T, url string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// awaitCond polls cond until it holds, failing after 20 s.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readClose reads until the connection ends and returns the close error.
func readClose(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func statsCount(s *Server, pick func(Stats) map[string]uint64, key string) uint64 {
	return pick(s.Stats())[key]
}

// Many polled connections: authenticated and idle, they cost no goroutine;
// they are served (subscribe, publish, deliver, including a frame too big
// for one write buffer); closing the server closes each with 1001 and ends
// every goroutine.
func TestPolledConnectionsHaveNoGoroutine(t *testing.T) {
	if err := canPoll(); err != nil {
		t.Skip("no poller on this platform:", err)
	}
	s, url := modeServer(t, Config{NodeID: "n1", OpenOps: true, MaxConnsPerAddr: -1}, false)
	base := runtime.NumGoroutine()
	const n = 300
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dialWS(t, url, nil)
		if _, err := relaytest.Handshake(conns[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Conns; got != n {
		t.Fatalf("%d connections, want %d", got, n)
	}
	// Writers exit once welcome is written; readers only run while a
	// socket is readable. The poller is one goroutine.
	awaitCond(t, "the idle connections' goroutines to end", func() bool { return runtime.NumGoroutine() < base+n/10 })

	sub, pub := &rawClient{t: t, ws: conns[7]}, &rawClient{t: t, ws: conns[250]}
	sub.write(&wire.Subscribe{Req: 1, Op: "op", From: 1})
	sub.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Subscribed); return ok })
	big := make([]byte, 100<<10)
	_, _ = rand.Read(big)
	for i, env := range [][]byte{[]byte("small"), big} {
		msgID := make([]byte, 16)
		_, _ = rand.Read(msgID)
		pub.write(&wire.Publish{Req: uint64(10 + i), Op: "op", MsgID: msgID, Envelope: env})
		if a, ok := pub.read().(*wire.Ack); !ok || a.Req != uint64(10+i) || a.Seq != uint64(i+1) {
			t.Fatalf("publish %d not acked", i)
		}
		d, ok := sub.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Deliver); return ok }).(*wire.Deliver)
		if !ok || d.Seq != uint64(i+1) || len(d.Envelopes) != 1 || !bytes.Equal(d.Envelopes[0], env) {
			t.Fatalf("delivery %d wrong", i)
		}
	}

	go s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readClose(t, ws); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("want close 1001 on every connection, got %v", err)
	}
}

// The auth deadline, the idle timeout and pings hold for both readers: a
// connection that never authenticates is closed CloseAuth; one that stops
// answering pings is closed CloseIdle; one that answers them stays open.
func TestAuthAndIdleDeadlines(t *testing.T) {
	readerModes(t, func(t *testing.T, noPoll bool) {
		s, url := modeServer(t, Config{NodeID: "n1", OpenOps: true, ChallengeTTL: 50 * time.Millisecond, PingInterval: 50 * time.Millisecond, IdleTimeout: 500 * time.Millisecond}, noPoll)
		silent := dialWS(t, url, nil)
		if _, err := relaytest.ReadHello(silent); err != nil {
			t.Fatal(err)
		}
		idle := dialWS(t, url, nil)
		alive := dialWS(t, url, nil)
		for _, ws := range []*websocket.Conn{idle, alive} {
			if _, err := relaytest.Handshake(ws, nil); err != nil {
				t.Fatal(err)
			}
		}
		frames := make(chan wire.Frame, 16)
		go func() { // reading answers pings
			defer close(frames)
			for {
				_ = alive.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, b, err := alive.ReadMessage()
				if err != nil {
					return
				}
				if f, err := wire.Decode(b); err == nil {
					frames <- f
				}
			}
		}()
		idle.SetPingHandler(func(string) error { return nil }) // never answers
		if err := readClose(t, idle); !websocket.IsCloseError(err, wire.CloseIdle) {
			t.Fatalf("idle connection: want close %d, got %v", wire.CloseIdle, err)
		}
		if err := readClose(t, silent); !websocket.IsCloseError(err, wire.CloseAuth) {
			t.Fatalf("silent connection: want close %d, got %v", wire.CloseAuth, err)
		}
		// The connection that answered pings is past the idle timeout
		// since it last sent a frame, and still served.
		msgID := make([]byte, 16)
		_, _ = rand.Read(msgID)
		b, _ := wire.Encode(&wire.Publish{Req: 7, Op: "op", MsgID: msgID, Envelope: []byte("x")})
		if err := alive.WriteMessage(websocket.BinaryMessage, b); err != nil {
			t.Fatal(err)
		}
		if a, ok := (<-frames).(*wire.Ack); !ok || a.Req != 7 {
			t.Fatal("alive connection not acked")
		}
		if n := statsCount(s, func(st Stats) map[string]uint64 { return st.Limits }, limitIdle); n != 1 {
			t.Fatalf("idle closes %d, want 1", n)
		}
		if n := statsCount(s, func(st Stats) map[string]uint64 { return st.AuthFailures }, authTimeout); n != 1 {
			t.Fatalf("auth timeouts %d, want 1", n)
		}
	})
}

// Frame limits and protocol errors close as they did with gorilla's
// reader: a message over MaxFrame with 1009, a text message with bad_frame
// and 4001, a client close with its echo; a message fragmented by the
// client, with a ping between its fragments, is served.
func TestReadLimitsAndFraming(t *testing.T) {
	readerModes(t, func(t *testing.T, noPoll bool) {
		s, url := modeServer(t, Config{NodeID: "n1", OpenOps: true, MaxFrame: 4096}, noPoll)

		big := dialWS(t, url, nil)
		if _, err := relaytest.Handshake(big, nil); err != nil {
			t.Fatal(err)
		}
		if err := big.WriteMessage(websocket.BinaryMessage, make([]byte, 4097)); err != nil {
			t.Fatal(err)
		}
		if err := readClose(t, big); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("oversize: want close 1009, got %v", err)
		}
		// gorilla's reader counts after its close frame is out.
		awaitCond(t, "frame_size counted", func() bool {
			return statsCount(s, func(st Stats) map[string]uint64 { return st.Limits }, limitFrameSize) == 1
		})

		text := dialWS(t, url, nil)
		if _, err := relaytest.Handshake(text, nil); err != nil {
			t.Fatal(err)
		}
		if err := text.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if e, ok := (&rawClient{t: t, ws: text}).read().(*wire.Error); !ok || e.Code != wire.CodeBadFrame {
			t.Fatal("text message: want a bad_frame error")
		}
		if err := readClose(t, text); !websocket.IsCloseError(err, wire.CloseBadFrame) {
			t.Fatalf("text message: want close %d, got %v", wire.CloseBadFrame, err)
		}

		// Fragments of at most 64 bytes (the dialer's write buffer).
		frag := dialWS(t, url, &websocket.Dialer{WriteBufferSize: 64})
		if _, err := relaytest.Handshake(frag, nil); err != nil {
			t.Fatal(err)
		}
		pong := make(chan struct{}, 1)
		frag.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
		msgID := make([]byte, 16)
		_, _ = rand.Read(msgID)
		b, _ := wire.Encode(&wire.Publish{Req: 3, Op: "op", MsgID: msgID, Envelope: bytes.Repeat([]byte("e"), 700)})
		w, err := frag.NextWriter(websocket.BinaryMessage)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b[:300]); err != nil {
			t.Fatal(err)
		}
		if err := frag.WriteControl(websocket.PingMessage, []byte("between"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b[300:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if a, ok := (&rawClient{t: t, ws: frag}).read().(*wire.Ack); !ok || a.Req != 3 {
			t.Fatal("fragmented publish not acked")
		}
		select {
		case <-pong:
		default:
			t.Fatal("no pong to the ping between fragments")
		}

		// A client close is echoed and the connection ends.
		if err := frag.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := readClose(t, frag); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("client close: want the echo 1000, got %v", err)
		}
		awaitCond(t, "every connection to end", func() bool { return s.Stats().Conns == 0 })
	})
}

// A polled connection that breaks the WebSocket protocol (an unmasked
// frame) is closed with 1002.
func TestPolledProtocolError(t *testing.T) {
	if err := canPoll(); err != nil {
		t.Skip("no poller on this platform:", err)
	}
	s, url := modeServer(t, Config{NodeID: "n1"}, false)
	ws := dialWS(t, url, nil)
	if _, err := relaytest.Handshake(ws, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.NetConn().Write([]byte{0x82, 0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	err := readClose(t, ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError {
		t.Fatalf("want close 1002, got %v", err)
	}
	awaitCond(t, "the connection to end", func() bool { return s.Stats().Conns == 0 })
}

// Publishes that reach a polled reader in one read are each served with
// their own envelope: the reader reuses its message buffer, so nothing it
// hands on may alias it.
func TestPipelinedPublishesKeepTheirBytes(t *testing.T) {
	readerModes(t, func(t *testing.T, noPoll bool) {
		_, url := modeServer(t, Config{NodeID: "n1", OpenOps: true}, noPoll)
		pub := &rawClient{t: t, ws: dialWS(t, url, nil)}
		if _, err := relaytest.Handshake(pub.ws, nil); err != nil {
			t.Fatal(err)
		}
		const n = 20
		envs := make([][]byte, n)
		var stream []byte
		for i := range envs {
			envs[i] = bytes.Repeat([]byte{byte('a' + i)}, 300) // same size: each overlays the last
			msgID := make([]byte, 16)
			_, _ = rand.Read(msgID)
			b, err := wire.Encode(&wire.Publish{Req: uint64(i + 1), Op: "op", MsgID: msgID, Envelope: envs[i]})
			if err != nil {
				t.Fatal(err)
			}
			stream = append(stream, clientFrame(true, opBinary, b, [4]byte{7, 1, 3, 9})...)
		}
		if _, err := pub.ws.NetConn().Write(stream); err != nil { // one write
			t.Fatal(err)
		}
		for i := range n {
			if a, ok := pub.read().(*wire.Ack); !ok || a.Req != uint64(i+1) || a.Seq != uint64(i+1) {
				t.Fatalf("publish %d: want ack seq %d", i+1, i+1)
			}
		}
		// Read back from the log (the test log keeps the envelopes it was
		// given, as they are).
		sub := &rawClient{t: t, ws: dialWS(t, url, nil)}
		if _, err := relaytest.Handshake(sub.ws, nil); err != nil {
			t.Fatal(err)
		}
		sub.write(&wire.Subscribe{Req: 1, Op: "op", From: 1})
		for next := 0; next < n; {
			d, ok := sub.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Deliver); return ok }).(*wire.Deliver)
			if !ok || d.Seq != uint64(next+1) {
				t.Fatalf("deliver from %d, want %d", d.Seq, next+1)
			}
			for _, e := range d.Envelopes {
				if !bytes.Equal(e, envs[next]) {
					t.Fatalf("entry %d holds %q..., want %q...", next+1, e[:4], envs[next][:4])
				}
				next++
			}
		}
	})
}
