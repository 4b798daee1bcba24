package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node-to-node connections share one listener (the Raft address). The
// dialer writes one byte naming the stream type after the (optional) TLS
// handshake; the mux hands the connection to the matching listener.
const (
	streamRaft    byte = 1
	streamForward byte = 2
)

// handshakeTimeout bounds TLS and the stream-type byte on a new connection.
const handshakeTimeout = 5 * time.Second

// mux accepts node-to-node connections and dispatches them by stream type.
type mux struct {
	ln   net.Listener
	tls  *tls.Config // nil: plain TCP (single-node default only)
	adv  net.Addr
	src  net.Addr // local address of outgoing connections; nil: the OS's choice
	log  *slog.Logger
	subs map[byte]*subListener

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	connMu sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

// trackedConn is a node-to-node connection the mux closes on shutdown, so no
// reader (raft's or ours) outlives the node.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.m.connMu.Lock()
		delete(c.m.conns, c)
		c.m.connMu.Unlock()
	})
	return c.Conn.Close()
}

// track registers c; it returns false (and closes c) if the mux is closed.
func (m *mux) track(c net.Conn) (net.Conn, bool) {
	tc := &trackedConn{Conn: c, m: m}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.closed {
		c.Close()
		return nil, false
	}
	m.conns[tc] = struct{}{}
	return tc, true
}

func newMux(ln net.Listener, adv net.Addr, tlsCfg *tls.Config, log *slog.Logger) *mux {
	m := &mux{ln: ln, tls: tlsCfg, adv: adv, log: log, subs: make(map[byte]*subListener), conns: make(map[*trackedConn]struct{})}
	for _, t := range []byte{streamRaft, streamForward, streamGossip} {
		m.subs[t] = &subListener{addr: adv, conns: make(chan net.Conn), done: make(chan struct{})}
	}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Error("cluster listener stopped", "err", err)
			}
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.handoff(c)
		}()
	}
}

func (m *mux) handoff(c net.Conn) {
	c, ok := m.track(c)
	if !ok {
		return
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.log.Warn("cluster connection refused: TLS handshake failed", "remote", c.RemoteAddr(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	var t [1]byte
	if _, err := io.ReadFull(c, t[:]); err != nil {
		c.Close()
		return
	}
	sub, ok := m.subs[t[0]]
	if !ok {
		m.log.Warn("cluster connection refused: unknown stream type", "remote", c.RemoteAddr(), "type", t[0])
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case sub.conns <- c:
	case <-sub.done:
		c.Close()
	}
}

// dial opens a stream of type t to a node's cluster address.
func (m *mux) dial(addr string, t byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: m.src}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, ok := m.track(raw)
	if !ok {
		return nil, net.ErrClosed
	}
	_ = c.SetDeadline(time.Now().Add(max(timeout, handshakeTimeout)))
	if m.tls != nil {
		tc := tls.Client(c, m.tls)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{t}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// close stops accepting and waits for handoffs in progress.
func (m *mux) close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.ln.Close()
		for _, s := range m.subs {
			s.Close()
		}
		m.connMu.Lock()
		m.closed = true
		conns := make([]*trackedConn, 0, len(m.conns))
		for c := range m.conns {
			conns = append(conns, c)
		}
		m.connMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		m.wg.Wait()
	})
	return m.closeErr
}

// subListener is the net.Listener of one stream type.
type subListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.addr }

// raftLayer is raft's StreamLayer over the mux.
type raftLayer struct {
	*subListener
	m *mux
}

var _ raft.StreamLayer = raftLayer{}

func (r raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return r.m.dial(string(addr), streamRaft, timeout)
}
