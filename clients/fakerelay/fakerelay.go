// Package fakerelay is an in-process stand-in for the Liaison relay, for unit
// tests of the client library and the CLI only. It speaks the wire protocol
// of docs/protocol.md over a real WebSocket (httptest + gorilla/websocket):
// hello/auth/welcome, subscribe/subscribed/deliver with stored-then-live
// delivery, publish/ack with dedupe by msgid. It keeps its logs in memory and
// has hooks to drop connections, delay or refuse publishes, rewrite history
// and inject arbitrary frames. It is not a relay: no Raft, no disk, no limits.
//
// Entries carry a kind (wire.KindMessage or wire.KindCommit). Like the real
// relay's FSM, the fake checks published commits with crypto.CheckCommit
// against the operation's roster (genesis only on an empty log) and answers
// stale_head, forbidden or bad_request; SetCheckCommits(false) turns that
// off. Entries added with Append/AppendKind are never checked.
//
// It lives outside internal/ only because Go's internal rule would hide it
// from cmd/liaison's tests. Do not use it outside tests.
package fakerelay

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/relay/wire"
)

// Action tells the fake what to do with a publish frame.
type Action int

// Publish actions.
const (
	// Commit stores the entry (or finds its msgid) and acks it.
	Commit Action = iota
	// CommitThenDrop stores the entry, then closes the connection
	// without acking.
	CommitThenDrop
	// DropBeforeCommit closes the connection without storing anything.
	DropBeforeCommit
	// Ignore neither stores nor answers.
	Ignore
	// Defer holds the publish until ReleaseDeferred.
	Defer
	// Reject answers with an error frame carrying Decision.Code.
	Reject
)

// Decision is the answer of a publish hook.
type Decision struct {
	Action Action
	Code   wire.Code // for Reject
}

// DeliverAction tells the fake what to do with a deliver frame it is about to
// send.
type DeliverAction int

// Deliver actions.
const (
	// Send sends the frame.
	Send DeliverAction = iota
	// SendThenDrop sends the frame, then closes the connection.
	SendThenDrop
)

type opLog struct {
	entries [][]byte
	kinds   []wire.Kind
	roster  *crypto.Roster // after the last accepted checked commit
	chains  [][32]byte     // chains[i] is the chain hash of seq i+1
	ids     map[[16]byte]uint64
	first   uint64
}

func (l *opLog) head() uint64 { return uint64(len(l.entries)) }

func (l *opLog) chain(seq uint64) [32]byte {
	if seq == 0 {
		return [32]byte{}
	}
	return l.chains[seq-1]
}

func (l *opLog) rechain(from uint64) {
	for seq := from; seq <= l.head(); seq++ {
		prev := l.chain(seq - 1)
		l.chains[seq-1] = wire.ChainNext(prev, l.entries[seq-1])
	}
}

type deferred struct {
	c *sconn
	p *wire.Publish
}

// checkCommitLocked is the fake's version of the relay FSM's commit
// acceptance test: it returns the resulting roster, or the error code to
// answer.
func checkCommitLocked(l *opLog, op string, env []byte) (*crypto.Roster, wire.Code) {
	if _, err := crypto.DecodeCommit(env); err != nil {
		return nil, wire.CodeBadRequest
	}
	if l.roster == nil && l.head() > 0 {
		return nil, wire.CodeForbidden // genesis only on an empty log
	}
	c, next, err := crypto.CheckCommit(l.roster, env)
	switch {
	case err == nil && c.OpID != op:
		return nil, wire.CodeForbidden
	case err == nil:
		return next, 0
	case errors.Is(err, crypto.ErrMalformed), errors.Is(err, crypto.ErrVersion), errors.Is(err, crypto.ErrTooLarge):
		return nil, wire.CodeBadRequest
	case errors.Is(err, crypto.ErrNotHead):
		return nil, wire.CodeStaleHead
	case l.roster != nil && errors.Is(err, crypto.ErrNotGenesis):
		return nil, wire.CodeStaleHead
	}
	return nil, wire.CodeForbidden
}

// checkMessageLocked is the fake's version of the relay FSM's message
// check: on an operation with a roster, only envelopes sealed in the
// current epoch are taken.
func checkMessageLocked(l *opLog, env []byte) wire.Code {
	if l.roster == nil {
		return 0
	}
	h, err := crypto.ParseEnvelopeHeader(env)
	switch {
	case err != nil:
		return wire.CodeForbidden
	case h.Epoch < l.roster.Epoch:
		return wire.CodeStaleHead
	case h.Epoch > l.roster.Epoch:
		return wire.CodeForbidden
	}
	return 0
}

// Server is a fake relay. Create it with New; Close it at the end of the
// test.
type Server struct {
	// URL is the WebSocket URL (ws://127.0.0.1:port/ws).
	URL string
	// Addr is host:port.
	Addr string

	hs *httptest.Server
	up websocket.Upgrader
	wg sync.WaitGroup

	mu         sync.Mutex
	node       string
	closed     bool
	logs       map[string]*opLog
	conns      map[int]*sconn
	nconn      int
	handshakes int
	auths      []wire.Auth
	publishes  []wire.Publish
	subscribes []wire.Subscribe
	deferred   []deferred
	batch      int
	onPublish  func(*wire.Publish) Decision
	onDeliver  func(connID int, d *wire.Deliver) DeliverAction
	changed    chan struct{}
	noCheck    bool
}

// SetCheckCommits turns the check of published commits on (the default) or
// off.
func (s *Server) SetCheckCommits(on bool) {
	s.mu.Lock()
	s.noCheck = !on
	s.mu.Unlock()
}

// New starts a fake relay with node id node.
func New(node string) *Server {
	s := &Server{
		node:    node,
		logs:    make(map[string]*opLog),
		conns:   make(map[int]*sconn),
		batch:   wire.MaxDeliverEntries,
		changed: make(chan struct{}),
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Addr = strings.TrimPrefix(s.hs.URL, "http://")
	s.URL = "ws://" + s.Addr + "/ws"
	return s
}

// Close drops every connection and stops the server; it waits for all of the
// fake's goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hs.Close()
	s.DropAll()
	s.wg.Wait()
}

// notifyLocked wakes Await callers. s.mu is held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Await waits until cond returns true, re-evaluating it after every change
// in the fake's state; it fails the test after 10 s.
func (s *Server) Await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("fakerelay: timed out waiting for %s", what)
		}
	}
}

// SetOnPublish installs a hook deciding the fate of each publish frame (nil:
// commit all). It is called with the fake's lock held: it must not call the
// Server's methods.
func (s *Server) SetOnPublish(f func(*wire.Publish) Decision) {
	s.mu.Lock()
	s.onPublish = f
	s.mu.Unlock()
}

// SetOnDeliver installs a hook called for each deliver frame before it is
// queued (nil: send all). Same locking rule as SetOnPublish.
func (s *Server) SetOnDeliver(f func(connID int, d *wire.Deliver) DeliverAction) {
	s.mu.Lock()
	s.onDeliver = f
	s.mu.Unlock()
}

// SetBatch sets the most entries the fake packs in one deliver frame.
func (s *Server) SetBatch(n int) {
	s.mu.Lock()
	s.batch = n
	s.mu.Unlock()
}

func (s *Server) logLocked(op string) *opLog {
	l, ok := s.logs[op]
	if !ok {
		l = &opLog{ids: make(map[[16]byte]uint64), first: 1}
		s.logs[op] = l
	}
	return l
}

// Append commits env to op as if a client had published it with a random
// msgid, delivers it to subscribers, and returns its sequence.
func (s *Server) Append(op string, env []byte) uint64 {
	return s.AppendKind(op, wire.KindMessage, env)
}

// AppendKind is Append for an entry of the given kind. A commit appended
// this way is not checked, and does not change the roster the fake checks
// published commits against.
func (s *Server) AppendKind(op string, kind wire.Kind, env []byte) uint64 {
	var id [16]byte
	rand.Read(id[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, _ := s.commitLocked(op, id, kind, env)
	return seq
}

// Kinds returns the kinds of op's entries.
func (s *Server) Kinds(op string) []wire.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Kind(nil), s.logLocked(op).kinds...)
}

// Rewrite replaces the envelope of op's entry seq and recomputes the chain
// from there: the fake now shows a different history.
func (s *Server) Rewrite(op string, seq uint64, env []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logLocked(op)
	l.entries[seq-1] = env
	l.rechain(seq)
	s.notifyLocked()
}

// SetFirst pretends retention removed op's entries before first.
func (s *Server) SetFirst(op string, first uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logLocked(op).first = first
}

// Entries returns a copy of op's log.
func (s *Server) Entries(op string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.logLocked(op).entries...)
}

// Chain returns the chain hash of op's entry seq (zero for 0).
func (s *Server) Chain(op string, seq uint64) [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op).chain(seq)
}

// Handshakes counts completed handshakes (connections welcomed).
func (s *Server) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// Live counts open connections.
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Auths returns the auth frames received.
func (s *Server) Auths() []wire.Auth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Auth(nil), s.auths...)
}

// Publishes returns the publish frames received (envelopes included).
func (s *Server) Publishes() []wire.Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Publish(nil), s.publishes...)
}

// Subscribes returns the subscribe frames received.
func (s *Server) Subscribes() []wire.Subscribe {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Subscribe(nil), s.subscribes...)
}

// Deferred counts publishes held by the Defer action.
func (s *Server) Deferred() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.deferred)
}

// ReleaseDeferred commits and acks every deferred publish.
func (s *Server) ReleaseDeferred() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deferred {
		if seq, dup, code := s.publishLocked(d.p); code != 0 {
			d.c.sendFrame(&wire.Error{Req: d.p.Req, Code: code, Op: d.p.Op, Message: "refused by fake"})
		} else {
			d.c.sendFrame(&wire.Ack{Req: d.p.Req, Op: d.p.Op, Seq: seq, Dup: dup})
		}
	}
	s.deferred = nil
	s.notifyLocked()
}

// DropAll closes every open connection.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := make([]*sconn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Inject queues raw bytes as one binary message on every open connection.
func (s *Server) Inject(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.enqueue(b, false)
	}
}

// InjectFrame encodes f and queues it on every open connection.
func (s *Server) InjectFrame(f wire.Frame) {
	b, err := wire.Encode(f)
	if err != nil {
		panic(fmt.Sprintf("fakerelay: encode: %v", err))
	}
	s.Inject(b)
}

// publishLocked commits a published entry: a duplicate msgid is acked with
// its sequence; a commit is checked first (unless checks are off) and a
// non-zero code is returned if it is refused.
func (s *Server) publishLocked(p *wire.Publish) (uint64, bool, wire.Code) {
	l := s.logLocked(p.Op)
	if seq, ok := l.ids[[16]byte(p.MsgID)]; ok {
		return seq, true, 0
	}
	var next *crypto.Roster
	if p.Kind == wire.KindMessage && !s.noCheck {
		if code := checkMessageLocked(l, p.Envelope); code != 0 {
			return 0, false, code
		}
	}
	if p.Kind == wire.KindCommit && !s.noCheck {
		var code wire.Code
		if next, code = checkCommitLocked(l, p.Op, p.Envelope); code != 0 {
			return 0, false, code
		}
	}
	seq, dup := s.commitLocked(p.Op, [16]byte(p.MsgID), p.Kind, p.Envelope)
	if next != nil {
		l.roster = next
	}
	return seq, dup, 0
}

// commitLocked stores env under (op, id) unless id is known, fans the new
// entry out to live subscribers and returns its sequence.
func (s *Server) commitLocked(op string, id [16]byte, kind wire.Kind, env []byte) (uint64, bool) {
	l := s.logLocked(op)
	if seq, ok := l.ids[id]; ok {
		return seq, true
	}
	prev := l.chain(l.head())
	l.entries = append(l.entries, env)
	l.kinds = append(l.kinds, kind)
	l.chains = append(l.chains, wire.ChainNext(prev, env))
	seq := l.head()
	l.ids[id] = seq
	for _, c := range s.conns {
		if next, ok := c.subs[op]; ok && next == seq {
			s.sendDeliverLocked(c, op, l, seq, seq)
			c.subs[op] = seq + 1
		}
	}
	s.notifyLocked()
	return seq, false
}

// sendDeliverLocked queues op's entries from..to on c, in frames of at most
// s.batch entries.
func (s *Server) sendDeliverLocked(c *sconn, op string, l *opLog, from, to uint64) {
	for seq := from; seq <= to; {
		end := min(to, seq+uint64(s.batch)-1)
		prev := l.chain(seq - 1)
		d := &wire.Deliver{Op: op, Seq: seq, Prev: prev[:], Envelopes: append([][]byte(nil), l.entries[seq-1:end]...)}
		if slices.ContainsFunc(l.kinds[seq-1:end], func(k wire.Kind) bool { return k != wire.KindMessage }) {
			d.Kinds = make([]byte, len(d.Envelopes))
			for j, k := range l.kinds[seq-1 : end] {
				d.Kinds[j] = byte(k)
			}
		}
		act := Send
		if s.onDeliver != nil {
			act = s.onDeliver(c.id, d)
		}
		b, _ := wire.Encode(d)
		c.enqueue(b, act == SendThenDrop)
		seq = end + 1
	}
}

// verifyAuth checks an auth as the relay does: an identity token and its
// signature over the hello's login (the fake serves no TLS, so no channel
// binding).
func verifyAuth(h *wire.Hello, a *wire.Auth) error {
	if a.Version != wire.Version {
		return fmt.Errorf("version %d", a.Version)
	}
	if a.Binding != wire.BindingNone {
		return errors.New("the connection has no TLS channel binding")
	}
	tok, err := crypto.ParseToken(a.Identity)
	if err != nil {
		return fmt.Errorf("identity token: %w", err)
	}
	return crypto.VerifyLogin(tok.SigningKey, crypto.Login{Challenge: h.Challenge, Node: h.Node, Time: h.Time}, a.Signature)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		http.NotFound(w, r)
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(wire.MaxClientFrame)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.nconn++
	c := &sconn{id: s.nconn, ws: ws, subs: make(map[string]uint64), sig: make(chan struct{}, 1), done: make(chan struct{})}
	s.wg.Add(2) // this handler (hijacked: httptest does not wait for it) and the writer
	s.mu.Unlock()
	defer s.wg.Done()
	go func() { defer s.wg.Done(); c.writeLoop() }()
	defer c.close()

	var challenge [32]byte
	rand.Read(challenge[:])
	hello := &wire.Hello{Versions: []uint{wire.Version}, Node: s.node, Challenge: challenge[:], Time: time.Now().UnixMilli()}
	c.sendFrame(hello)
	f, err := c.read()
	if err != nil {
		return
	}
	auth, ok := f.(*wire.Auth)
	if !ok {
		c.sendFrame(&wire.Error{Code: wire.CodeUnauthenticated})
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.auths = append(s.auths, *auth)
	if err := verifyAuth(hello, auth); err != nil {
		s.mu.Unlock()
		b, _ := wire.Encode(&wire.Error{Code: wire.CodeUnauthenticated, Message: err.Error()})
		c.enqueue(b, true) // the writer closes the connection after it
		<-c.done
		return
	}
	s.conns[c.id] = c
	s.handshakes++
	c.sendFrame(&wire.Welcome{Version: wire.Version, Node: s.node, Session: fmt.Sprintf("s%d", c.id)})
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c.id)
		s.notifyLocked()
		s.mu.Unlock()
	}()

	for {
		f, err := c.read()
		if err != nil {
			return
		}
		s.mu.Lock()
		switch f := f.(type) {
		case *wire.Subscribe:
			s.subscribes = append(s.subscribes, *f)
			l := s.logLocked(f.Op)
			if f.From < l.first && f.Retained {
				s.subscribeRetainedLocked(c, f, l)
				break
			}
			if f.From < l.first {
				c.sendFrame(&wire.Error{Req: f.Req, Code: wire.CodeCompacted, Op: f.Op, Seq: l.first})
				break
			}
			c.sendFrame(&wire.Subscribed{Req: f.Req, Op: f.Op, From: f.From, Head: l.head(), First: l.first})
			if f.From <= l.head() {
				s.sendDeliverLocked(c, f.Op, l, f.From, l.head())
				c.subs[f.Op] = l.head() + 1
			} else {
				c.subs[f.Op] = f.From
			}
		case *wire.Unsubscribe:
			delete(c.subs, f.Op)
		case *wire.PresenceReq:
			// Every connection subscribed to the op, anonymous, with the
			// highest sequence queued to it.
			p := &wire.Presence{Req: f.Req, Op: f.Op, Time: time.Now().UnixMilli()}
			for _, o := range s.conns {
				if next, ok := o.subs[f.Op]; ok {
					p.Entries = append(p.Entries, wire.PresenceEntry{Node: s.node, Conn: fmt.Sprint(o.id), Connected: true, Since: 1, LastSeen: 1, Delivered: next - 1})
				}
			}
			c.sendFrame(p)
		case *wire.Publish:
			s.publishes = append(s.publishes, *f)
			d := Decision{Action: Commit}
			if s.onPublish != nil {
				d = s.onPublish(f)
			}
			switch d.Action {
			case Commit:
				if seq, dup, code := s.publishLocked(f); code != 0 {
					c.sendFrame(&wire.Error{Req: f.Req, Code: code, Op: f.Op, Message: "refused by fake"})
				} else {
					c.sendFrame(&wire.Ack{Req: f.Req, Op: f.Op, Seq: seq, Dup: dup})
				}
			case CommitThenDrop:
				if _, _, code := s.publishLocked(f); code != 0 {
					c.sendFrame(&wire.Error{Req: f.Req, Code: code, Op: f.Op, Message: "refused by fake"})
				}
				c.enqueue(nil, true)
			case DropBeforeCommit:
				c.enqueue(nil, true)
			case Ignore:
			case Defer:
				s.deferred = append(s.deferred, deferred{c, f})
			case Reject:
				c.sendFrame(&wire.Error{Req: f.Req, Code: d.Code, Op: f.Op, Message: "rejected by fake"})
			}
		default:
			c.sendFrame(&wire.Error{Code: wire.CodeBadFrame, Message: "unexpected " + f.Type().String()})
			c.enqueue(nil, true)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// sconn is one server-side connection with an unbounded outbound queue.
type sconn struct {
	id   int
	ws   *websocket.Conn
	subs map[string]uint64 // op -> next live sequence; under Server.mu

	qmu    sync.Mutex
	q      []qitem
	sig    chan struct{}
	done   chan struct{}
	closed sync.Once
}

type qitem struct {
	b    []byte // nil: nothing to write
	drop bool   // close the connection after writing b
}

func (c *sconn) read() (wire.Frame, error) {
	mt, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if mt != websocket.BinaryMessage {
		return nil, fmt.Errorf("text message")
	}
	return wire.Decode(b)
}

func (c *sconn) sendFrame(f wire.Frame) {
	b, err := wire.Encode(f)
	if err != nil {
		panic(fmt.Sprintf("fakerelay: encode %s: %v", f.Type(), err))
	}
	c.enqueue(b, false)
}

func (c *sconn) enqueue(b []byte, drop bool) {
	c.qmu.Lock()
	c.q = append(c.q, qitem{b, drop})
	c.qmu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *sconn) writeLoop() {
	for {
		select {
		case <-c.sig:
		case <-c.done:
			return
		}
		c.qmu.Lock()
		q := c.q
		c.q = nil
		c.qmu.Unlock()
		for _, it := range q {
			if it.b != nil {
				c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if err := c.ws.WriteMessage(websocket.BinaryMessage, it.b); err != nil {
					c.close()
					return
				}
			}
			if it.drop {
				c.close()
				return
			}
		}
	}
}

func (c *sconn) close() {
	c.closed.Do(func() {
		close(c.done)
		c.ws.Close()
	})
}

// subscribeRetainedLocked answers a subscribe with retained from below the
// first held entry as the relay does: subscribed from first with the
// anchors, the commits kept in the gap, then the entries from first.
func (s *Server) subscribeRetainedLocked(c *sconn, f *wire.Subscribe, l *opLog) {
	var logAnchor [32]byte
	for seq := uint64(1); seq < l.first; seq++ {
		logAnchor = crypto.LogChain(logAnchor, seq, l.entries[seq-1])
	}
	var kept []*wire.Retained
	for seq := f.From; seq < l.first; seq++ {
		if l.kinds[seq-1] == wire.KindCommit {
			kept = append(kept, &wire.Retained{Op: f.Op, Seq: seq, Entry: l.entries[seq-1]})
		}
	}
	prev := l.chain(l.first - 1)
	c.sendFrame(&wire.Subscribed{Req: f.Req, Op: f.Op, From: l.first, Head: l.head(), First: l.first,
		Prev: prev[:], LogAnchor: logAnchor[:], Retained: uint64(len(kept))})
	for _, r := range kept {
		c.sendFrame(r)
	}
	if l.first <= l.head() {
		s.sendDeliverLocked(c, f.Op, l, l.first, l.head())
		c.subs[f.Op] = l.head() + 1
	} else {
		c.subs[f.Op] = l.first
	}
}
