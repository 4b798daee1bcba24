package relay

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"liaison/internal/netbatch"
	"liaison/relay/wire"
)

// Polled connections. An idle connection with a reader goroutine keeps that
// goroutine's stack (4 KiB at least) and gorilla's read buffer for as long as
// it stays idle. On Linux, a plain-TCP connection has no reader goroutine
// instead: the server's poller (one epoll instance, one goroutine) watches
// its socket, and when it becomes readable starts a short-lived reader
// (readReady) that reads what arrived without waiting, parses the WebSocket
// frames itself (frameParser), handles the requests exactly as the
// goroutine reader does (serve), re-arms the socket and returns. TLS
// connections, and every connection on other platforms, keep the reader
// goroutine (readLoop).
//
// What the goroutine reader gets from read deadlines and its ping timer, a
// polled connection gets from the poller's sweep (due), which checks every
// watched connection a few times per deadline: the auth deadline
// (ChallengeTTL + 2 s after hello, closed CloseAuth), the idle timeout
// (IdleTimeout after the last frame or pong, closed CloseIdle) and the
// pings; so a polled connection needs no timer either.

// Phases of a polled connection.
const (
	phaseHello    = iota // hello sent, waiting for auth
	phaseAuthed          // authenticated
	phaseTimedOut        // no auth in time: closing
	phaseIdle            // idle for IdleTimeout: closing
)

// readBufSize is the buffer a polled reader reads a socket into (pooled:
// only running readers hold one).
const readBufSize = 16 << 10

var (
	readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
	parsers  = sync.Pool{New: func() any { return new(frameParser) }}
	errEOF   = io.EOF
)

// startPoller returns the server's poller, starting it with the first
// connection, or nil when r's connection is to have a reader goroutine (TLS,
// no epoll).
func (s *Server) startPoller(r *http.Request) *poller {
	if r.TLS != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pollFailed || s.noPoll || s.closed {
		return nil
	}
	if s.poller != nil {
		return s.poller
	}
	p, err := newPoller()
	if err != nil {
		s.pollFailed = true
		s.cfg.Logger.Warn("connections will have reader goroutines", "err", err)
		return nil
	}
	s.poller = p
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := p.run(s.pollReady, func() { s.sweep(p) }, s.sweepEvery()); err != nil {
			s.pollerFailed(p, err)
		}
	}()
	return p
}

// pollerFailed handles a poller that stopped on an error (not expected):
// its connections are closed with 1011 so that their clients reconnect,
// and later connections get reader goroutines.
func (s *Server) pollerFailed(p *poller, err error) {
	s.cfg.Logger.Error("connection poller failed; closing its connections", "err", err)
	s.mu.Lock()
	s.pollFailed = true
	s.mu.Unlock()
	var conns []*conn
	p.each(func(c *conn) { conns = append(conns, c) })
	for _, c := range conns {
		c.closeWith(websocket.CloseInternalServerErr, "")
	}
}

// pollReady starts the reader of a connection whose socket is readable.
func (s *Server) pollReady(c *conn) {
	s.wg.Add(1)
	go c.readReady()
}

// rawConn returns the socket under nc when the poller can watch it (TCP,
// possibly batched), else nil.
func rawConn(nc net.Conn) syscall.RawConn {
	if bc, ok := nc.(*netbatch.Conn); ok {
		nc = bc.Conn
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// startPolled hands the connection, whose socket is c.rc, to p and sends
// hello. If p cannot watch the socket, it ends the connection.
func (c *conn) startPolled(p *poller) {
	c.helloTime = time.Now().UnixMilli() // before the sweep can see c
	err := p.add(c, c.rc, func(id uint64) {
		c.mu.Lock()
		c.pollID = id
		c.mu.Unlock()
	})
	if err != nil {
		c.log.Warn("cannot watch the connection", "err", err)
		c.closeWith(websocket.CloseInternalServerErr, "")
		return
	}
	c.sendHello()
}

// sweepEvery is how often the poller checks its connections' deadlines:
// a tenth of the shortest, within [5 ms, 1 s].
func (s *Server) sweepEvery() time.Duration {
	d := min(s.cfg.PingInterval, s.cfg.IdleTimeout, s.cfg.ChallengeTTL+authGrace) / 10
	return min(max(d, 5*time.Millisecond), time.Second)
}

// due reports what a polled connection's deadlines call for at now (Unix
// ms): authExpired, idleExpired, ping, or nil. It claims the action, so a
// later sweep does not repeat it. The poller calls it for every connection
// it watches, every sweepEvery, so it only loads and compares.
func (c *conn) due(now int64) func() {
	switch c.phase.Load() {
	case phaseHello:
		if now >= c.helloTime+(c.s.cfg.ChallengeTTL+authGrace).Milliseconds() && c.phase.CompareAndSwap(phaseHello, phaseTimedOut) {
			return c.authExpired
		}
	case phaseAuthed:
		if now-c.lastSeen.Load() >= c.s.cfg.IdleTimeout.Milliseconds() && c.phase.CompareAndSwap(phaseAuthed, phaseIdle) {
			return c.idleExpired
		}
		if next := c.nextPing.Load(); now >= next && c.nextPing.CompareAndSwap(next, now+c.s.cfg.PingInterval.Milliseconds()) {
			return c.pingPolled
		}
	}
	return nil
}

// authExpired closes a connection that sent no auth in time (the poller's
// sweep, or the goroutine reader's read deadline).
func (c *conn) authExpired() {
	c.s.stats.authFailures.inc(authTimeout)
	c.closeWith(wire.CloseAuth, "no auth")
}

// idleExpired closes a connection that sent nothing, not even a pong, for
// IdleTimeout (the poller's sweep, or the goroutine reader's read deadline).
func (c *conn) idleExpired() {
	c.s.stats.limits.inc(limitIdle)
	c.closeWith(wire.CloseIdle, "idle")
}

func (c *conn) pingPolled() { c.ping() }

// sweep runs the due actions of the polled connections, each on a
// goroutine of its own (a write may wait up to WriteTimeout).
func (s *Server) sweep(p *poller) {
	now := time.Now().UnixMilli()
	var acts []func()
	p.each(func(c *conn) {
		if act := c.due(now); act != nil {
			acts = append(acts, act)
		}
	})
	for _, act := range acts {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			act()
		}()
	}
}

// readReady reads what the socket holds, serves it, and re-arms the socket
// (or ends the connection).
func (c *conn) readReady() {
	defer c.s.wg.Done()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		n, err := readSocket(c.rc, buf)
		if err != nil {
			c.socketFailed(err)
			return
		}
		if n == 0 {
			break
		}
		if c.parser == nil {
			c.parser = parsers.Get().(*frameParser)
		}
		ok, err := c.parser.feed(buf[:n], c.s.cfg.MaxFrame, c)
		if err != nil {
			c.parseFailed(err)
			return
		}
		if !ok {
			c.endRead()
			return
		}
		if c.parser.idle() {
			c.parser.release()
			parsers.Put(c.parser)
			c.parser = nil
		}
		if n < len(buf) {
			break // drained, most likely; if not, arm reports it at once
		}
	}
	if err := c.s.poller.arm(c.rc, c.pollID); err != nil {
		if c.s.poller.hasFailed() {
			// As pollerFailed does, which may not have reached this
			// connection yet: the client reconnects.
			c.closeWith(websocket.CloseInternalServerErr, "")
			return
		}
		c.shutdown() // closed meanwhile
	}
}

// onMessage handles a client message of a polled connection (frameSink).
// wire.Decode copies what it keeps, so nothing here holds on to data.
func (c *conn) onMessage(text bool, data []byte) bool {
	f, ok := c.decode(text, data)
	if !ok {
		return false
	}
	switch c.phase.Load() {
	case phaseHello:
		if !c.auth(f) {
			return false
		}
		c.startPings()
		// Fails if the auth deadline passed meanwhile.
		return c.phase.CompareAndSwap(phaseHello, phaseAuthed)
	case phaseAuthed:
		return c.serve(f)
	}
	return false
}

// onControl handles a control frame of a polled connection (frameSink), as
// gorilla's default handlers and the pong handler of readLoop do.
func (c *conn) onControl(op byte, payload []byte) bool {
	switch op {
	case opPing:
		err := c.ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(time.Second))
		return err == nil
	case opPong:
		return c.touch() == nil
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, closePayload(payload), time.Now().Add(time.Second))
	return false
}

// socketFailed ends a polled connection whose socket read failed or that
// the peer closed.
func (c *conn) socketFailed(err error) {
	if !errors.Is(err, errEOF) {
		c.log.Debug("read ended", "err", err)
	}
	c.endRead()
}

// parseFailed ends a polled connection that broke the frame size limit
// (closed 1009, as gorilla does) or the WebSocket protocol (1002).
func (c *conn) parseFailed(err error) {
	code := websocket.CloseProtocolError
	text := err.Error()
	if errors.Is(err, errReadLimit) {
		c.frameTooBig()
		code, text = websocket.CloseMessageTooBig, ""
	} else {
		c.log.Debug("closing connection", "reason", text)
	}
	c.closeWith(code, text)
}
