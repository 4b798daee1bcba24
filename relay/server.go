package relay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"liaison/relay/wire"
)

// Server serves Liaison clients over WebSocket against a Log.
type Server struct {
	cfg      Config
	log      Log
	hub      *hub
	presence presenceTable
	upgrader websocket.Upgrader
	// pollUpgrader is for polled connections, whose reads do not go
	// through gorilla: its read buffer is gorilla's smallest.
	pollUpgrader websocket.Upgrader
	unwatch      func()

	stats stats

	mu      sync.Mutex
	conns   map[*conn]struct{}
	perAddr map[string]int // open connections by source IP (MaxConnsPerAddr)
	closed  bool
	wg      sync.WaitGroup // every goroutine of every connection, and the poller's

	// poller watches the idle plain-TCP connections (Linux; poll.go),
	// started with the first connection; nil until then, or if it could
	// not start, or when noPoll is set (tests of the goroutine reader).
	poller     *poller
	pollFailed bool
	noPoll     bool
}

// New returns a Server for log. Close it to release its connections.
func New(log Log, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: log, hub: newHub(), conns: make(map[*conn]struct{}), perAddr: make(map[string]int)}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  cfg.HandshakeTimeout,
		ReadBufferSize:    512,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       s.checkOrigin,
		EnableCompression: false,
	}
	s.pollUpgrader = s.upgrader
	s.pollUpgrader.ReadBufferSize = 1 // raised to gorilla's minimum (a control frame)
	s.unwatch = log.Watch(s.announce)
	return s
}

// Handler returns the HTTP routes: /ws, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.ServeWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.log.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// checkOrigin accepts requests without an Origin header (non-browser
// clients), same-origin requests, and the configured allow-list.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, origin) || origin == "http://"+r.Host || origin == "https://"+r.Host {
		return true
	}
	s.stats.limits.inc(limitOrigin)
	return false
}

// ServeWS upgrades the request and hands the connection to its reader
// goroutine; the handler itself returns at once.
func (s *Server) ServeWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	host := remoteHost(r.RemoteAddr)
	if !s.reserveAddr(host) {
		s.stats.limits.inc(limitConnsPerAddr)
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	up := &s.upgrader
	p := s.startPoller(r)
	if p != nil {
		up = &s.pollUpgrader
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.mu.Lock()
		s.releaseAddrLocked(host)
		s.mu.Unlock()
		return // the upgrader has answered the request
	}
	var c *conn
	var rc syscall.RawConn
	if p != nil {
		rc = rawConn(ws.NetConn())
	}
	if rc != nil {
		// Polled: gorilla's Conn is dropped; frameWriter writes.
		c = newConn(s, &frameWriter{nc: ws.NetConn()}, r.RemoteAddr, r.TLS)
		c.rc = rc
	} else {
		c = newConn(s, ws, r.RemoteAddr, r.TLS)
	}
	s.mu.Lock()
	if s.closed {
		s.releaseAddrLocked(host)
		s.mu.Unlock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		c.ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if rc != nil {
		c.startPolled(p)
		s.wg.Done()
		return
	}
	go c.readLoop()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.releaseAddrLocked(remoteHost(c.remote))
	}
	s.mu.Unlock()
}

// Close refuses new connections, closes every open one with 1001 (going
// away) so clients reconnect elsewhere, and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.unwatch()
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "node shutting down")
	}
	s.mu.Lock()
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
	s.wg.Wait()
	return nil
}

// Stats are the relay's gauges and counters since start.
type Stats struct {
	// Conns is the number of open connections.
	Conns int
	// Subscriptions is the number of open subscriptions.
	Subscriptions int64
	// QueueBytes is the sum of the connections' outbound queues.
	QueueBytes int64
	// Publishes counts answered publishes by outcome: "ok", "dup", or the
	// wire error code's name.
	Publishes map[string]uint64
	// Delivered counts entries sent in deliver frames.
	Delivered uint64
	// Lagged counts live subscriptions switched to reading from the log
	// because their connection's outbound queue was full.
	Lagged uint64
	// BadFrames counts connections closed for a malformed frame.
	BadFrames uint64
	// AuthFailures counts refused handshakes by reason (see
	// docs/protocol.md, Authentication).
	AuthFailures map[string]uint64
	// UnboundLogins counts logins on TLS connections whose signature did
	// not cover the TLS channel (browsers).
	UnboundLogins uint64
	// Refused counts requests refused by access control, by reason.
	Refused map[string]uint64
	// Limits counts enforcements of connection limits, by limit (see
	// docs/protocol.md, Limits).
	Limits map[string]uint64
}

// Stats returns the relay's gauges and counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var queued int64
	for _, c := range conns {
		c.mu.Lock()
		queued += int64(c.queued)
		c.mu.Unlock()
	}
	return Stats{
		Conns:         len(conns),
		Subscriptions: s.stats.subs.Load(),
		QueueBytes:    queued,
		Publishes:     s.stats.publishes.snapshot(),
		Delivered:     s.stats.delivered.Load(),
		Lagged:        s.stats.lagged.Load(),
		BadFrames:     s.stats.badFrames.Load(),
		AuthFailures:  s.stats.authFailures.snapshot(),
		UnboundLogins: s.stats.unboundLogins.Load(),
		Refused:       s.stats.refused.snapshot(),
		Limits:        s.stats.limits.snapshot(),
	}
}

type stats struct {
	subs          atomic.Int64
	delivered     atomic.Uint64
	lagged        atomic.Uint64
	badFrames     atomic.Uint64
	unboundLogins atomic.Uint64
	publishes     labelCounter
	authFailures  labelCounter
	refused       labelCounter
	limits        labelCounter
}

// labelCounter counts events by a small set of labels.
type labelCounter struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (l *labelCounter) inc(label string) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]uint64)
	}
	l.m[label]++
	l.mu.Unlock()
}

func (l *labelCounter) snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.m))
	for k, v := range l.m {
		out[k] = v
	}
	return out
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newChallenge() []byte {
	b := make([]byte, wire.ChallengeLen)
	_, _ = rand.Read(b)
	return b
}

// codeFor converts a Log error into a wire code.
func codeFor(err error) wire.Code {
	switch {
	case errors.Is(err, ErrUnavailable):
		return wire.CodeUnavailable
	case errors.Is(err, ErrUnknownOutcome):
		return wire.CodeTimeout
	case errors.Is(err, ErrInvalid):
		return wire.CodeBadRequest
	case errors.Is(err, ErrCompacted):
		return wire.CodeCompacted
	case errors.Is(err, ErrStaleHead):
		return wire.CodeStaleHead
	case errors.Is(err, ErrRejected):
		return wire.CodeForbidden
	}
	return wire.CodeInternal
}

// errorFrame builds an error frame, trimming the message to the limit.
func errorFrame(req uint64, op string, code wire.Code, msg string) *wire.Error {
	if len(msg) > wire.MaxMessageLen {
		msg = msg[:wire.MaxMessageLen]
	}
	msg = strings.ToValidUTF8(msg, "")
	if !wire.ValidOp(op) {
		op = ""
	}
	return &wire.Error{Req: req, Op: op, Code: code, Message: msg}
}
