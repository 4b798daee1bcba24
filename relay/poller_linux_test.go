package relay

import (
	"crypto/rand"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"

	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// When epoll_wait fails (not expected in practice), every polled
// connection is closed with 1011 so that its client reconnects, the poller
// goroutine ends, and connections made afterwards get reader goroutines and
// are served.
func TestPollerFailureClosesConnectionsAndFallsBack(t *testing.T) {
	var fail atomic.Bool
	epollWait = func(epfd int, events []syscall.EpollEvent, msec int) (int, error) {
		if fail.Load() {
			return 0, syscall.EIO
		}
		return syscall.EpollWait(epfd, events, msec)
	}
	// Registered first, so it runs after the server's cleanup has waited
	// for the poller goroutine.
	t.Cleanup(func() { epollWait = syscall.EpollWait })
	s, url := modeServer(t, Config{NodeID: "n1", OpenOps: true, MaxConnsPerAddr: -1}, false)

	polled := []*websocket.Conn{dialWS(t, url, nil), dialWS(t, url, nil)}
	for _, ws := range polled {
		if _, err := relaytest.Handshake(ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	started := s.poller != nil
	s.mu.Unlock()
	if !started {
		t.Fatal("the connections were not polled")
	}
	fail.Store(true)
	// Make a socket readable so that the poller waits again now rather
	// than at its next sweep.
	if err := polled[0].WriteMessage(websocket.PingMessage, nil); err != nil {
		t.Fatal(err)
	}
	for i, ws := range polled {
		if err := readClose(t, ws); !websocket.IsCloseError(err, websocket.CloseInternalServerErr) {
			t.Fatalf("connection %d: want close 1011, got %v", i, err)
		}
	}
	awaitCond(t, "the server to note the failure", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pollFailed
	})

	// A later connection has a reader goroutine and is served.
	pub := &rawClient{t: t, ws: dialWS(t, url, nil)}
	if _, err := relaytest.Handshake(pub.ws, nil); err != nil {
		t.Fatal(err)
	}
	msgID := make([]byte, 16)
	_, _ = rand.Read(msgID)
	pub.write(&wire.Publish{Req: 1, Op: "op", MsgID: msgID, Envelope: []byte("after")})
	if a, ok := pub.read().(*wire.Ack); !ok || a.Req != 1 || a.Seq != 1 {
		t.Fatal("publish after the poller failed not acked")
	}
}
