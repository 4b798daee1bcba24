package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/internal/netbatch"
	"liaison/relay/wire"
)

// conn is one client connection. Its reader is either a goroutine of its
// own (readLoop, serveLoop) or, on Linux for plain TCP connections, the
// server's poller, which starts a short-lived reader when the socket is
// readable (poll.go), so that an idle connection has no goroutine. The
// writer goroutine, started on demand, owns data writes; control frames
// (ping, close) may be written from anywhere, as gorilla allows.
type conn struct {
	s      *Server
	ws     wsConn // gorilla's Conn (reader goroutine) or a frameWriter (polled)
	id     string
	log    connLog
	remote string // the peer's "host:port"; its host is counted in Server.perAddr

	// identity is the connection's authenticated identity (see Identity):
	// set once by auth before welcome, nil until then.
	identity atomic.Pointer[ident]

	challenge []byte        // this connection's login challenge; nil once used
	helloTime int64         // when hello was sent, Unix ms: its time field (signed by the client) and the challenge's age
	channel   []byte        // TLS channel binding (tls-exporter), nil without TLS
	inflight  chan struct{} // one token per publish awaiting commit; made by the first publish

	// Used by the reader only (in turn by the polled readers, which
	// rmu orders).
	bucket bucket              // frame rate limit
	ops    map[string]struct{} // operations used (MaxOps); nil until the first

	// Polled connections only (poll.go): the socket, the poller's id for
	// it, and the WebSocket parse state while a frame is incomplete.
	rc     syscall.RawConn
	pollID uint64
	parser *frameParser
	rmu    sync.Mutex
	phase  atomic.Int32 // phaseHello, phaseAuthed, phaseTimedOut or phaseIdle

	mu        sync.Mutex
	room      sync.Cond // broadcast when the queue drains or the conn closes
	queue     []outFrame
	queued    int // bytes in queue and being written
	writing   bool
	closed    bool
	closeCode int // set: close after the queue is written
	closeText string
	done      chan struct{}            // closed by shutdown; made by doneChan
	subs      map[string]*subscription // nil until the first subscribe
	timer     *time.Timer              // pings (reader goroutine only; see startPings)
	// delivered is the highest sequence of each operation written to the
	// connection (relay metadata for delivery tracking).
	delivered map[string]uint64
	// ops lists the operations the connection subscribed or published
	// to, with the time of the first (presence).
	joined map[string]int64

	lastSeen  atomic.Int64 // Unix ms of the last frame or pong received
	nextPing  atomic.Int64 // Unix ms of the next ping (polled)
	fullSince int64        // since when (mono) queued >= QueueBytes/2; zero if not
	slowTimer *time.Timer  // checks fullSince (checkSlow)
	abort     bool         // slow consumer: the writer stops after its current frame
}

func newConn(s *Server, ws wsConn, remote string, tlsState *tls.ConnectionState) *conn {
	c := &conn{
		s:         s,
		ws:        ws,
		remote:    remote,
		bucket:    newBucket(s.cfg.MsgRate, s.cfg.MsgBurst),
		id:        newSessionID(),
		challenge: newChallenge(),
		channel:   crypto.ChannelBinding(tlsState),
	}
	c.room.L = &c.mu
	c.log = connLog{c}
	c.lastSeen.Store(time.Now().UnixMilli())
	return c
}

// readLoop is the connection's only reader. It runs the handshake, then
// hands reading to serveLoop on a fresh goroutine: parsing the identity
// token and verifying the login signature grow a goroutine's stack, and an
// idle connection keeps its reader's stack for as long as it stays idle
// (docs/performance.md, memory per idle connection).
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	ws := c.ws.(*websocket.Conn)
	ws.SetReadLimit(int64(c.s.cfg.MaxFrame))
	ws.SetPongHandler(func(string) error { return c.touch() })
	now := time.Now()
	c.helloTime = now.UnixMilli()
	_ = ws.SetReadDeadline(now.Add(c.s.cfg.ChallengeTTL + authGrace))
	c.sendHello()

	f, ok := c.readFrame(false)
	if !ok || !c.auth(f) {
		c.endRead()
		return
	}
	c.startPings()
	c.s.wg.Add(1)
	go c.serveLoop()
}

// sendHello queues hello with the connection's challenge and hello time
// (set by the caller: the poller's sweep may read it as soon as the
// connection is watched).
func (c *conn) sendHello() {
	c.send(&wire.Hello{Versions: []uint{wire.Version}, Node: c.s.cfg.NodeID, Challenge: c.challenge, Time: c.helloTime})
}

// serveLoop reads and dispatches requests until the connection ends.
func (c *conn) serveLoop() {
	defer c.s.wg.Done()
	defer c.endRead()
	for {
		f, ok := c.readFrame(true)
		if !ok || !c.serve(f) {
			return
		}
	}
}

// serve handles one request of an authenticated connection; false ends
// the connection.
func (c *conn) serve(f wire.Frame) bool {
	if err := c.touch(); err != nil {
		return false
	}
	if !c.bucket.take(time.Now()) {
		return c.rateLimited(f)
	}
	switch f := f.(type) {
	case *wire.Subscribe:
		c.subscribe(f)
	case *wire.Unsubscribe:
		c.unsubscribe(f.Op)
	case *wire.Publish:
		return c.publish(f)
	case *wire.PresenceReq:
		c.presence(f)
	case *wire.Auth:
		c.refuseAuth(authSecond, wire.CodeUnauthenticated, "a connection authenticates once")
		return false
	default:
		c.fail(wire.CodeBadFrame, fmt.Sprintf("a client may not send %s", f.Type()))
		return false
	}
	return true
}

// readFrame reads and decodes one frame. On a read error or a malformed
// frame (which it answers) it returns false.
func (c *conn) readFrame(authed bool) (wire.Frame, bool) {
	mt, data, err := c.ws.(*websocket.Conn).ReadMessage()
	if err != nil {
		c.readFailed(err, authed)
		return nil, false
	}
	return c.decode(mt == websocket.TextMessage, data)
}

// decode decodes a client message; a text message or a malformed frame is
// answered with bad_frame and returns false.
func (c *conn) decode(text bool, data []byte) (wire.Frame, bool) {
	if text {
		c.fail(wire.CodeBadFrame, "text frames are not part of the protocol")
		return nil, false
	}
	f, err := wire.Decode(data)
	if err != nil {
		c.fail(wire.CodeBadFrame, err.Error())
		return nil, false
	}
	return f, true
}

// doneChan returns a channel closed when the connection has ended. It is
// made on demand: few connections ever wait for it.
func (c *conn) doneChan() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.closed {
			close(c.done)
		}
	}
	return c.done
}

// endRead runs when the reader stops. If an error frame is waiting to be
// written before the close, it lets the writer finish (bounded by the write
// timeout); otherwise it ends the connection now.
func (c *conn) endRead() {
	c.mu.Lock()
	pending := c.closeCode != 0 && !c.closed
	c.mu.Unlock()
	if pending {
		t := time.NewTimer(c.s.cfg.WriteTimeout + time.Second)
		defer t.Stop()
		select {
		case <-c.doneChan():
		case <-t.C:
		}
	}
	c.shutdown()
}

func isExpectedClose(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) || errors.Is(err, websocket.ErrCloseSent)
}

// touch records that the client was heard from. A reader goroutine's
// idle deadline is its read deadline; the poller's sweep checks a polled
// connection's.
func (c *conn) touch() error {
	c.lastSeen.Store(time.Now().UnixMilli())
	if c.rc != nil {
		return nil
	}
	return c.ws.(*websocket.Conn).SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
}

func (c *conn) publish(f *wire.Publish) bool {
	if rf := c.mayPublish(f); rf != nil {
		c.s.stats.publishes.inc(rf.code.String())
		c.sendRefusal(f.Req, f.Op, rf)
		return true
	}
	if !c.useOp(f.Req, f.Op) {
		c.s.stats.publishes.inc(wire.CodeLimit.String())
		return true
	}
	if c.inflight == nil {
		c.inflight = make(chan struct{}, c.s.cfg.MaxInflight)
	}
	inflight := c.inflight
	select {
	case inflight <- struct{}{}:
	default:
		// At the limit: stop reading until a commit frees a slot, so the
		// client is slowed by TCP rather than buffered in memory.
		select {
		case inflight <- struct{}{}:
		case <-c.doneChan():
			return false
		}
	}
	c.mu.Lock()
	c.joinLocked(f.Op)
	c.mu.Unlock()
	p := Publish{Op: f.Op, Class: uint8(f.Class), Kind: uint8(f.Kind), Envelope: f.Envelope}
	copy(p.MsgID[:], f.MsgID)
	req, op := f.Req, f.Op
	c.s.log.Submit(p, func(r Result, err error) {
		<-inflight
		if err != nil {
			code := codeFor(err)
			c.s.stats.publishes.inc(code.String())
			c.send(errorFrame(req, op, code, err.Error()))
			return
		}
		if r.Dup {
			c.s.stats.publishes.inc("dup")
		} else {
			c.s.stats.publishes.inc("ok")
		}
		c.send(&wire.Ack{Req: req, Op: op, Seq: r.Seq, Dup: r.Dup})
	})
	return true
}

// send encodes f (a frame of operation op, or "" for none) and queues it.
// Frames for a closed connection are dropped.
func (c *conn) send(f wire.Frame) {
	b, err := wire.Encode(f)
	if err != nil {
		c.log.Error("encode frame", "type", f.Type(), "err", err)
		return
	}
	c.mu.Lock()
	c.enqueueLocked(ctlFrame(b, frameOp(f)))
	c.mu.Unlock()
}

// frameOp is the operation a server frame concerns, "" for none.
func frameOp(f wire.Frame) string {
	switch f := f.(type) {
	case *wire.Ack:
		return f.Op
	case *wire.Error:
		return f.Op
	case *wire.Subscribed:
		return f.Op
	case *wire.Presence:
		return f.Op
	case *wire.Retained:
		return f.Op
	}
	return ""
}

func (c *conn) enqueueLocked(frames ...outFrame) {
	if c.closed || c.closeCode != 0 {
		return
	}
	c.queue = append(c.queue, frames...)
	c.queued += frameBytes(frames)
	c.noteQueueLocked()
	if !c.writing {
		c.writing = true
		c.s.wg.Add(1)
		go c.writeLoop()
	}
}

// writeLoop writes queued frames and exits when the queue is empty, so an
// idle connection has no writer goroutine.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	for {
		c.mu.Lock()
		if c.closed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			code, text := c.closeCode, c.closeText
			c.mu.Unlock()
			if code != 0 {
				c.closeWith(code, text)
			}
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		prioritize(batch)
		// Several frames leave in one write when the connection came
		// through BatchListener (the batch goes out in pieces of at most
		// 64 KiB, so the queue accounting below lags the wire by no more).
		bc, _ := c.ws.NetConn().(*netbatch.Conn)
		if len(batch) == 1 {
			bc = nil
		}
		if bc != nil {
			bc.Begin()
		}
		for i, f := range batch {
			err := c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if err == nil {
				err = c.ws.WriteMessage(websocket.BinaryMessage, f.b)
			}
			if err != nil {
				if bc != nil {
					_ = bc.Flush()
				}
				c.writeFailed(err)
				return
			}
			c.mu.Lock()
			if c.abort {
				// Slow consumer: drop the rest of this batch; the queue
				// now holds the error frame, then the close follows.
				c.abort = false
				c.queued -= frameBytes(batch[i:])
				c.mu.Unlock()
				break
			}
			c.queued -= len(f.b)
			c.recordDeliveredLocked(batch[i : i+1])
			batch[i].release() // written: a pooled buffer goes back
			if i == len(batch)-1 || c.queued < c.s.cfg.QueueBytes/2 {
				c.noteQueueLocked()
				c.room.Broadcast()
			}
			c.mu.Unlock()
		}
		if bc != nil {
			err := bc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if err == nil {
				err = bc.Flush()
			}
			if err != nil {
				c.writeFailed(err)
				return
			}
		}
	}
}

// writeFailed ends the connection after a failed write.
func (c *conn) writeFailed(err error) {
	c.log.Debug("write failed", "err", err)
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
	c.shutdown()
}

// fail sends an error frame and closes the connection with 4001 once it is
// written.
func (c *conn) fail(code wire.Code, msg string) {
	c.s.stats.badFrames.Add(1)
	c.failClose(code, msg, wire.CloseBadFrame)
}

func (c *conn) failClose(code wire.Code, msg string, closeCode int) {
	c.log.Info("closing connection", "code", code, "reason", msg)
	b, err := wire.Encode(errorFrame(0, "", code, msg))
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.enqueueLocked(ctlFrame(b, ""))
	}
	c.closeCode, c.closeText = closeCode, code.String()
	if !c.writing && !c.closed {
		c.writing = true
		c.s.wg.Add(1)
		go c.writeLoop()
	}
}

// closeWith sends a close frame with code and ends the connection.
func (c *conn) closeWith(code int, text string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.shutdown()
}

// shutdown ends the connection and its subscriptions. Idempotent.
func (c *conn) shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	subs := make([]*subscription, 0, len(c.subs))
	for _, s := range c.subs {
		s.endLocked()
		subs = append(subs, s)
	}
	for op := range c.joined {
		c.departLocked(op)
	}
	c.subs = nil
	c.queue = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.slowTimer != nil {
		c.slowTimer.Stop()
	}
	c.room.Broadcast()
	if c.done != nil {
		close(c.done)
	}
	pollID := c.pollID
	c.mu.Unlock()
	for _, s := range subs {
		c.s.hub.remove(s)
	}
	c.ws.Close()
	if pollID != 0 {
		c.s.poller.remove(pollID)
	}
	c.s.forget(c)
}

// startPings starts the pings of an authenticated connection: its own
// timer for a connection with a reader goroutine; the poller's sweep for a
// polled one (poll.go), which also enforces IdleTimeout.
func (c *conn) startPings() {
	c.nextPing.Store(time.Now().Add(c.s.cfg.PingInterval).UnixMilli())
	if c.rc != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.timer = time.AfterFunc(c.s.cfg.PingInterval, c.tick)
}

// tick pings a connection with a reader goroutine every PingInterval.
func (c *conn) tick() {
	if !c.ping() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.timer.Reset(c.s.cfg.PingInterval)
	}
}

// ping sends a ping; if that fails, it ends the connection and returns
// false.
func (c *conn) ping() bool {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
		c.shutdown()
		return false
	}
	return true
}
