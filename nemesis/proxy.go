package nemesis

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Link is the state of one direction of traffic between two parties, as a
// Proxy applies it.
type Link struct {
	// Blocked holds the bytes travelling in this direction (the proxy stops
	// reading them, so the sender sees TCP backpressure) until the link is
	// unblocked: packets lost until the network heals.
	Blocked bool
	// Delay is added before each chunk is passed on.
	Delay time.Duration
}

// Proxy is a fault-injecting TCP proxy in front of one destination. It
// tells connecting parties apart by their source IP (Source maps it to a
// name, "" for anyone unknown) and applies, to each connection from party
// s, the link s->dest to the bytes s sends and the link dest->s to the
// bytes it receives. When both directions are blocked the connection is
// closed and new ones are refused at once, as a partition would look to a
// dialer whose packets get a reset.
type Proxy struct {
	ln     net.Listener
	target string
	dest   string
	source func(net.Addr) string
	log    *slog.Logger

	mu     sync.Mutex
	links  map[[2]string]Link // [from, to] -> state
	conns  map[*proxyConn]struct{}
	change chan struct{} // closed and replaced whenever links change
	closed bool
	wg     sync.WaitGroup
}

type proxyConn struct {
	src         string
	client, srv net.Conn
	once        sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		c.srv.Close()
	})
}

// NewProxy listens on listen and forwards every connection to target. dest
// names the destination in link rules; source names the party behind a
// remote address.
func NewProxy(listen, target, dest string, source func(net.Addr) string, log *slog.Logger) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if source == nil {
		source = func(net.Addr) string { return "" }
	}
	p := &Proxy{ln: ln, target: target, dest: dest, source: source, log: log,
		links: make(map[[2]string]Link), conns: make(map[*proxyConn]struct{}), change: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLink sets the state of the direction from -> to (one of them is this
// proxy's destination). A link that becomes fully blocked closes the
// connections it carries.
func (p *Proxy) SetLink(from, to string, l Link) {
	p.mu.Lock()
	if l == (Link{}) {
		delete(p.links, [2]string{from, to})
	} else {
		p.links[[2]string{from, to}] = l
	}
	p.notifyLocked()
	var drop []*proxyConn
	for c := range p.conns {
		if p.cutLocked(c.src) {
			drop = append(drop, c)
		}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
}

// Heal clears every link rule.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.links = make(map[[2]string]Link)
	p.notifyLocked()
	p.mu.Unlock()
}

// CutAll closes every connection the proxy carries now (new ones are
// accepted): what a client sees when a load balancer or a mobile link
// drops.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	drop := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		drop = append(drop, c)
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
	return len(drop)
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.notifyLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return err
}

// notifyLocked wakes every pump waiting on a link rule to re-read it.
func (p *Proxy) notifyLocked() {
	close(p.change)
	p.change = make(chan struct{})
}

func (p *Proxy) cutLocked(src string) bool {
	return p.links[[2]string{src, p.dest}].Blocked && p.links[[2]string{p.dest, src}].Blocked
}

// link returns the state of from -> to and a channel closed at the next
// change.
func (p *Proxy) link(from, to string) (Link, <-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[[2]string{from, to}], p.change, p.closed
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && p.log != nil {
				p.log.Warn("proxy accept", "err", err)
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	src := p.source(c.RemoteAddr())
	p.mu.Lock()
	if p.closed || p.cutLocked(src) {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	srv, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pc := &proxyConn{src: src, client: c, srv: srv}
	p.mu.Lock()
	if p.closed || p.cutLocked(src) {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(pc, c, srv, src, p.dest) }()
	go func() { defer wg.Done(); p.pump(pc, srv, c, p.dest, src) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// pump copies from -> to, holding each chunk while the link is blocked and
// delaying it by the link's delay. Any error closes both sides.
func (p *Proxy) pump(pc *proxyConn, r io.Reader, w net.Conn, from, to string) {
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			for {
				l, change, closed := p.link(from, to)
				if closed {
					return
				}
				if !l.Blocked {
					if l.Delay > 0 {
						t := time.NewTimer(l.Delay)
						select {
						case <-t.C:
						case <-change:
							t.Stop()
							continue // re-read the rule: blocked or healed meanwhile
						}
					}
					break
				}
				<-change
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
