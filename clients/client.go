package clients

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// Client is a connection to a Liaison relay cluster that survives the loss of
// its connection. It is safe for concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger
	urls []string

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	closing   <-chan struct{} // ctx.Done()
	closeOnce sync.Once
	done      chan struct{} // closed when the supervisor has exited
	inflight  chan struct{} // semaphore bounding pending publishes

	req atomic.Uint64 // last request number used

	mu       sync.Mutex
	cur      *conn // live connection, nil while reconnecting
	urlIdx   int   // index in urls of cur (or of the last one)
	pubs     map[uint64]*pendingPub
	subs     map[string]*Subscription
	subReqs  map[uint64]*Subscription       // outstanding subscribe requests
	presReqs map[uint64]chan presenceAnswer // outstanding presence requests
	closed   bool

	ephemeral *crypto.Identity // made up by Dial (no Identity or Signer); destroyed by Close
}

// Dial connects to the first reachable relay of urls (each "host:port",
// "ws://host:port/ws" or "wss://..."), performs the handshake and starts the
// goroutines that keep the client connected. It returns an error if no relay
// could be reached, or if ctx ends first.
func Dial(ctx context.Context, urls []string, opts Options) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("clients: no relay address")
	}
	norm := make([]string, 0, len(urls))
	for _, u := range urls {
		n, err := NormalizeURL(u)
		if err != nil {
			return nil, err
		}
		norm = append(norm, n)
	}
	o := opts.withDefaults()
	var ephemeral *crypto.Identity
	if o.Signer == nil {
		id := o.Identity
		if id == nil {
			var err error
			if id, err = crypto.NewIdentity(rand.Reader, "ephemeral"); err != nil {
				return nil, fmt.Errorf("clients: ephemeral identity: %w", err)
			}
			ephemeral = id
		}
		o.Signer = IdentitySigner(id)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:     o,
		log:      o.Logger,
		urls:     norm,
		ctx:      cctx,
		cancel:   cancel,
		closing:  cctx.Done(),
		done:     make(chan struct{}),
		inflight: make(chan struct{}, o.MaxInFlight),
		pubs:     make(map[uint64]*pendingPub),
		subs:     make(map[string]*Subscription),
		subReqs:  make(map[uint64]*Subscription),
		presReqs: make(map[uint64]chan presenceAnswer),

		ephemeral: ephemeral,
	}
	var errs []error
	for i, u := range norm {
		cn, err := dialConn(ctx, u, &c.opts)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.log.Info("connected", "url", u, "node", cn.node, "session", cn.session)
		c.urlIdx = i
		c.install(cn)
		go c.supervise(cn)
		return c, nil
	}
	cancel()
	if ephemeral != nil {
		ephemeral.Destroy()
	}
	return nil, fmt.Errorf("clients: no relay reachable: %w", errors.Join(errs...))
}

// Node returns the id of the relay node the client is connected to, or ""
// while it is reconnecting.
func (c *Client) Node() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.node
}

// Close stops the client: it closes the connection, ends every subscription
// (their channels close, Err returns ErrClosed) and makes pending publishes
// return an error wrapping ErrClosed and ErrUnknownOutcome. It waits for the
// client's goroutines to exit. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		cur := c.cur
		c.mu.Unlock()
		c.cancel()
		if cur != nil {
			cur.close()
		}
		<-c.done
		c.mu.Lock()
		subs := make([]*Subscription, 0, len(c.subs))
		for _, s := range c.subs {
			subs = append(subs, s)
		}
		c.mu.Unlock()
		for _, s := range subs {
			s.finish(ErrClosed, false)
		}
		if c.ephemeral != nil {
			c.ephemeral.Destroy() // the supervisor, the only signer, has exited
		}
	})
	return nil
}

// nextReq returns a fresh request number.
func (c *Client) nextReq() uint64 { return c.req.Add(1) }

// install makes cn the live connection, starts its reader and re-sends what
// the previous connection left: subscriptions from their next sequence and
// unacknowledged publishes with their msgid.
func (c *Client) install(cn *conn) {
	c.mu.Lock()
	c.cur = cn
	var pubs []*pendingPub
	for _, p := range c.pubs {
		if p.sentOn != cn {
			p.sentOn = cn
			pubs = append(pubs, p)
		}
	}
	var subFrames []*wire.Subscribe
	for _, s := range c.subs {
		if f := s.resubscribeLocked(c, cn); f != nil {
			subFrames = append(subFrames, f)
		}
	}
	c.mu.Unlock()

	go c.read(cn)
	if len(pubs)+len(subFrames) > 0 {
		c.log.Debug("resuming", "node", cn.node, "publishes", len(pubs), "subscriptions", len(subFrames))
	}
	for _, f := range subFrames {
		if cn.writeFrame(f) != nil {
			return
		}
	}
	for _, p := range pubs {
		if cn.write(p.frame) != nil {
			return
		}
	}
}

// supervise waits for the live connection to end and replaces it, until the
// client is closed.
func (c *Client) supervise(cn *conn) {
	defer close(c.done)
	for {
		select {
		case <-cn.done:
		case <-c.closing:
			cn.close()
			<-cn.done
			return
		}
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		c.log.Info("connection lost", "url", cn.url, "node", cn.node)
		cn = c.reconnect()
		if cn == nil {
			return
		}
	}
}

// reconnect dials the relays in turn, starting after the one just lost, with
// backoff between attempts. It returns nil when the client is closed.
func (c *Client) reconnect() *conn {
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(backoff(c.opts.ReconnectMin, c.opts.ReconnectMax, attempt))
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
			return nil
		}
		c.urlIdx = (c.urlIdx + 1) % len(c.urls)
		u := c.urls[c.urlIdx]
		cn, err := dialConn(c.ctx, u, &c.opts)
		if err != nil {
			c.log.Warn("reconnect failed", "url", u, "attempt", attempt+1, "err", err)
			continue
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			cn.close()
			return nil
		}
		c.log.Info("reconnected", "url", u, "node", cn.node, "session", cn.session)
		c.install(cn)
		return cn
	}
}

// read is the connection's only reader. It dispatches every frame and exits
// when the connection fails or breaks the protocol.
func (c *Client) read(cn *conn) {
	defer close(cn.done)
	defer cn.close()
	idle := c.opts.IdleTimeout
	cn.ws.OnPing(func() { cn.ws.SetReadDeadline(time.Now().Add(idle)) })
	for {
		cn.ws.SetReadDeadline(time.Now().Add(idle))
		f, err := cn.readFrame()
		if err != nil {
			select {
			case <-c.closing:
			default:
				if errors.Is(err, ErrProtocol) {
					c.log.Warn("dropping connection", "node", cn.node, "err", err)
				} else {
					c.log.Debug("read ended", "node", cn.node, "err", err)
				}
			}
			return
		}
		if err := c.dispatch(cn, f); err != nil {
			c.log.Warn("dropping connection", "node", cn.node, "err", err)
			return
		}
	}
}

// dispatch handles one frame. An error drops the connection.
func (c *Client) dispatch(cn *conn, f wire.Frame) error {
	switch f := f.(type) {
	case *wire.Ack:
		c.handleAck(cn, f)
	case *wire.Deliver:
		return c.handleDeliver(cn, f)
	case *wire.Subscribed:
		return c.handleSubscribed(cn, f)
	case *wire.Presence:
		c.handlePresence(f)
	case *wire.Retained:
		return c.handleRetained(cn, f)
	case *wire.Error:
		return c.handleError(cn, f)
	default:
		return fmt.Errorf("%w: unexpected %s frame", ErrProtocol, f.Type())
	}
	return nil
}

func (c *Client) handleError(cn *conn, e *wire.Error) error {
	if e.Req == 0 && e.Op != "" {
		return c.subscriptionEnded(cn, e)
	}
	if e.Req == 0 {
		c.log.Warn("relay error", "node", cn.node, "code", e.Code.String(), "message", e.Message)
		if e.Code == wire.CodeBadFrame {
			return fmt.Errorf("relay rejected a frame: %w", e)
		}
		return nil // the relay closes the connection itself if it must
	}
	c.mu.Lock()
	if p, ok := c.pubs[e.Req]; ok {
		c.mu.Unlock()
		c.pubFailed(cn, p, e)
		return nil
	}
	s, ok := c.subReqs[e.Req]
	if ok {
		delete(c.subReqs, e.Req)
	}
	c.mu.Unlock()
	if ok {
		return s.subscribeFailed(c, e)
	}
	if c.presenceFailed(e) {
		return nil
	}
	c.log.Debug("error for unknown request", "req", e.Req, "code", e.Code.String())
	return nil
}
