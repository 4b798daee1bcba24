package clients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// NormalizeURL turns a relay address into a WebSocket URL: "host:port"
// becomes "ws://host:port/ws"; "ws://" and "wss://" URLs are kept, with path
// "/ws" added when they have none.
func NormalizeURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("clients: empty relay address")
	}
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("clients: relay address %q: %w", addr, err)
		}
		return "ws://" + addr + "/ws", nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("clients: relay address %q: %w", addr, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("clients: relay address %q: scheme must be ws or wss", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("clients: relay address %q: no host", addr)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// conn is one established (post-welcome) connection.
type conn struct {
	ws       transport
	url      string
	node     string
	session  string
	wtimeout time.Duration

	wmu sync.Mutex // serialises writes

	qmu     sync.Mutex // guards queue and writing
	queue   [][]byte   // frames waiting for the current writer
	writing bool       // a write call is sending the queue

	// unavailable counts consecutive publishes answered "unavailable" on
	// this connection (guarded by Client.mu); see maxUnavailable.
	unavailable int

	closeOnce sync.Once
	done      chan struct{} // closed when the reader goroutine exits
}

// write sends one frame. Frames written concurrently are coalesced: the
// first caller becomes the writer and sends everything queued meanwhile in
// one batch (one system call), in queue order; the others return at once.
// A failed write closes the connection so that its reader exits and the
// supervisor reconnects (and re-sends what was not acknowledged); only the
// writer sees the error.
func (c *conn) write(b []byte) error {
	c.qmu.Lock()
	c.queue = append(c.queue, b)
	if c.writing {
		c.qmu.Unlock()
		return nil
	}
	c.writing = true
	c.qmu.Unlock()
	for {
		c.qmu.Lock()
		batch := c.queue
		c.queue = nil
		if len(batch) == 0 {
			c.writing = false
			c.qmu.Unlock()
			return nil
		}
		c.qmu.Unlock()
		if err := c.writeBatch(batch); err != nil {
			c.qmu.Lock()
			c.queue, c.writing = nil, false
			c.qmu.Unlock()
			c.close()
			return fmt.Errorf("clients: write to %s: %w", c.url, err)
		}
	}
}

func (c *conn) writeBatch(batch [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessages(batch, time.Now().Add(c.wtimeout))
}

// writeFrame encodes and writes f.
func (c *conn) writeFrame(f wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	return c.write(b)
}

// close closes the underlying network connection; the reader then exits.
func (c *conn) close() {
	c.closeOnce.Do(func() { c.ws.Close() })
}

// dialConn connects to u and performs the handshake.
func dialConn(ctx context.Context, u string, o *Options) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	ws, err := dialTransport(ctx, u, o)
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, url: u, wtimeout: o.WriteTimeout, done: make(chan struct{})}
	// Make ctx cancellation interrupt blocking handshake reads and writes.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	err = c.handshake(ctx, o)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("handshake with %s: %w", u, err)
	}
	return c, nil
}

func (c *conn) handshake(ctx context.Context, o *Options) error {
	deadline, _ := ctx.Deadline()
	c.ws.SetReadDeadline(deadline)
	f, err := c.readFrame()
	if err != nil {
		return err
	}
	hello, ok := f.(*wire.Hello)
	if !ok {
		if e, ok := f.(*wire.Error); ok {
			return e
		}
		return fmt.Errorf("%w: expected hello, got %s", ErrProtocol, f.Type())
	}
	if !slices.Contains(hello.Versions, wire.Version) {
		return fmt.Errorf("clients: relay speaks versions %v, not %d", hello.Versions, wire.Version)
	}
	auth := &wire.Auth{Version: wire.Version, Client: o.ClientName}
	login := crypto.Login{Challenge: hello.Challenge, Node: hello.Node, Time: hello.Time, Channel: c.ws.ChannelBinding()}
	if login.Channel != nil {
		auth.Binding = wire.BindingTLSExporter
	}
	auth.Identity, auth.Signature, err = o.Signer(login)
	if err != nil {
		return fmt.Errorf("clients: sign challenge: %w", err)
	}
	b, err := wire.Encode(auth)
	if err != nil {
		return err
	}
	if err := c.ws.WriteMessage(b, deadline); err != nil {
		return err
	}
	f, err = c.readFrame()
	if err != nil {
		return err
	}
	switch f := f.(type) {
	case *wire.Welcome:
		if f.Version != wire.Version {
			return fmt.Errorf("%w: welcome with version %d", ErrProtocol, f.Version)
		}
		c.node, c.session = f.Node, f.Session
		if c.node == "" {
			c.node = hello.Node
		}
	case *wire.Error:
		return f
	default:
		return fmt.Errorf("%w: expected welcome, got %s", ErrProtocol, f.Type())
	}
	c.ws.SetReadDeadline(time.Time{})
	return nil
}

// readFrame reads and decodes one binary message.
func (c *conn) readFrame() (wire.Frame, error) {
	binary, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if !binary {
		return nil, fmt.Errorf("%w: non-binary message", ErrProtocol)
	}
	f, err := wire.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return f, nil
}
