package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarding: a follower sends the publishes it receives to the leader over
// a stream of the cluster mux (mutual TLS when the cluster has it).
//
// Frames in both directions are a uvarint length followed by that many bytes.
// A request is
//
//	id uvarint, then a publish command (see command.go)
//
// or, with one outcome, a membership request (membership.go) or a proposal
// (a retention command or an admin command without its time: control.go),
//
// and its response, sent once every publish in it has an outcome, is
//
//	id uvarint, count uvarint, then per publish:
//	  status 1 byte, seq uvarint, raft index uvarint, msglen uvarint, msg
//
// The leader feeds forwarded publishes into its own batcher, so traffic from
// every node shares Raft entries. A follower acknowledges a publish only once
// its own FSM has applied the Raft index the leader reports, so a client may
// read its write on the node it wrote through.
const (
	fwdOK byte = iota
	fwdDup
	fwdStaleHead
	fwdRejected
	fwdInvalid
	fwdNotLeader
	fwdUnknown
	fwdClosed
	fwdUnauthorized
	fwdAdminsExist
)

// maxForwardFrame bounds a forwarding frame.
const maxForwardFrame = 2*MaxCommit + (1 << 20)

func fwdStatus(err error) byte {
	switch {
	case err == nil:
		return fwdOK
	case errors.Is(err, ErrStaleHead):
		return fwdStaleHead
	case errors.Is(err, ErrRejected):
		return fwdRejected
	case errors.Is(err, ErrInvalid):
		return fwdInvalid
	case errors.Is(err, ErrNotLeader):
		return fwdNotLeader
	case errors.Is(err, ErrClosed):
		return fwdClosed
	case errors.Is(err, ErrMembership):
		return fwdRejected
	case errors.Is(err, ErrUnauthorized):
		return fwdUnauthorized
	case errors.Is(err, ErrAdminsExist):
		return fwdAdminsExist
	}
	return fwdUnknown
}

func fwdError(status byte, msg string) error {
	var base error
	switch status {
	case fwdStaleHead:
		base = ErrStaleHead
	case fwdRejected:
		base = ErrRejected
	case fwdInvalid:
		base = ErrInvalid
	case fwdNotLeader:
		base = ErrNotLeader
	case fwdClosed:
		// The leader was shutting down before it took the publish.
		base = ErrNotLeader
	case fwdUnauthorized:
		base = ErrUnauthorized
	case fwdAdminsExist:
		base = ErrAdminsExist
	default:
		base = ErrUnknownOutcome
	}
	if msg == "" {
		return base
	}
	return fmt.Errorf("%w (leader: %s)", base, msg)
}

func writeFrame(w io.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func newFrameReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }

func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > maxForwardFrame {
		return nil, fmt.Errorf("%w: forwarding frame of %d bytes", ErrBadCommand, n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// serveStream accepts the mux's streams of one type and runs handle on
// each in its own goroutine (counted in bg; handle calls bg.Done).
func (n *Node) serveStream(stream byte, handle func(net.Conn)) {
	defer n.bg.Done()
	ln := n.mux.subs[stream]
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n.bg.Add(1)
		go handle(c)
	}
}

// serveForwardConn runs one follower's stream: requests in, responses out
// as their publishes complete (in any order).
func (n *Node) serveForwardConn(c net.Conn) {
	defer n.bg.Done()
	var wmu sync.Mutex
	var inflight sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		select {
		case <-n.stop:
		case <-stop:
		}
		c.Close()
	}()
	defer func() {
		inflight.Wait()
		close(stop)
		c.Close()
	}()
	// respond makes the response of request id, carrying count outcomes;
	// it is written once all are set. A failed write ends the stream.
	respond := func(id uint64, count int) *fwdResponse {
		inflight.Add(1)
		return newFwdResponse(id, count, func(b []byte) {
			defer inflight.Done()
			wmu.Lock()
			defer wmu.Unlock()
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := writeFrame(c, b); err != nil {
				c.Close()
			}
		})
	}
	// single answers request id with the one outcome do returns, computed
	// off the reading goroutine.
	single := func(id uint64, do func() (Result, uint64, error)) {
		resp := respond(id, 1)
		go func() {
			res, index, err := do()
			resp.set(0, res, index, err)
		}()
	}
	r := newFrameReader(c)
	for {
		b, err := readFrame(r)
		if err != nil {
			return
		}
		rd := reader{b: b}
		id := rd.uvarint()
		if rd.err != nil || len(rd.b) == 0 {
			return
		}
		if _, admin := auditKind(rd.b[0]); admin || rd.b[0] == commandRetention {
			req := rd.b
			single(id, func() (Result, uint64, error) {
				ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout+5*time.Second)
				defer cancel()
				seq, index, err := n.proposeLocal(ctx, req)
				return Result{Seq: seq}, index, err
			})
			continue
		}
		if rd.b[0] == commandMembership {
			action, nid, addr, err := decodeMembership(rd.b)
			if err != nil {
				return
			}
			cert := peerCertificate(c)
			single(id, func() (Result, uint64, error) {
				ctx, cancel := context.WithTimeout(context.Background(), membershipTimeout+5*time.Second)
				defer cancel()
				if action != memberJoin {
					return Result{}, 0, n.membership(ctx, action, nid, addr)
				}
				err := n.membership(ctx, memberAdd, nid, addr)
				if err == nil {
					n.recordJoin(ctx, nid, addr, cert)
				}
				return Result{}, 0, err
			})
			continue
		}
		cmd, err := decodeCommand(rd.b)
		if err != nil || cmd.kind != commandPublish {
			n.cfg.Logger.Warn("bad forwarded request; closing the stream", "remote", c.RemoteAddr(), "err", err, "kind", cmd.kind)
			return
		}
		resp := respond(id, len(cmd.pubs))
		for i := range cmd.pubs {
			n.enqueue(cmd.pubs[i], true, func(res Result, index uint64, err error) { resp.set(i, res, index, err) })
		}
	}
}

// fwdResponse collects the outcomes of one forwarded request.
type fwdResponse struct {
	mu      sync.Mutex
	id      uint64
	left    int
	status  []byte
	seqs    []uint64
	indexes []uint64
	msgs    []string
	send    func([]byte)
}

func newFwdResponse(id uint64, count int, send func([]byte)) *fwdResponse {
	return &fwdResponse{id: id, left: count, status: make([]byte, count), seqs: make([]uint64, count),
		indexes: make([]uint64, count), msgs: make([]string, count), send: send}
}

func (f *fwdResponse) set(i int, r Result, index uint64, err error) {
	f.mu.Lock()
	f.status[i] = fwdStatus(err)
	if err == nil && r.Dup {
		f.status[i] = fwdDup
	}
	f.seqs[i], f.indexes[i] = r.Seq, index
	if err != nil {
		msg := err.Error()
		if len(msg) > maxFwdMsg {
			msg = msg[:maxFwdMsg]
		}
		f.msgs[i] = msg
	}
	f.left--
	done := f.left == 0
	f.mu.Unlock()
	if done {
		f.send(f.encode())
	}
}

func (f *fwdResponse) encode() []byte {
	b := binary.AppendUvarint(nil, f.id)
	b = binary.AppendUvarint(b, uint64(len(f.status)))
	for i := range f.status {
		b = append(b, f.status[i])
		b = binary.AppendUvarint(b, f.seqs[i])
		b = binary.AppendUvarint(b, f.indexes[i])
		b = binary.AppendUvarint(b, uint64(len(f.msgs[i])))
		b = append(b, f.msgs[i]...)
	}
	return b
}

// forwarder is a follower's stream to the leader.
type forwarder struct {
	n *Node

	mu      sync.Mutex
	conn    net.Conn
	addr    string
	nextID  uint64
	pending map[uint64]*fwdRequest
}

type fwdRequest struct {
	conn net.Conn
	pubs []*pending
}

func newForwarder(n *Node) *forwarder {
	return &forwarder{n: n, pending: make(map[uint64]*fwdRequest)}
}

// send forwards a batch to the leader at addr. Outcomes arrive through each
// pending's done.
func (f *forwarder) send(addr string, batch []*pending) {
	f.mu.Lock()
	if f.conn != nil && f.addr != addr {
		f.dropLocked(f.conn, fmt.Errorf("%w: leader changed", ErrUnknownOutcome))
	}
	if f.conn == nil {
		c, err := f.n.mux.dial(addr, streamForward, 5*time.Second)
		if err != nil {
			f.mu.Unlock()
			failAll(batch, fmt.Errorf("%w: cannot reach the leader at %s: %v", ErrNotLeader, addr, err))
			return
		}
		f.conn, f.addr = c, addr
		f.n.bg.Add(1)
		go f.readLoop(c)
	}
	c := f.conn
	f.nextID++
	id := f.nextID
	f.pending[id] = &fwdRequest{conn: c, pubs: batch}
	f.mu.Unlock()

	body := binary.AppendUvarint(nil, id)
	body = append(body, encodePublishes(0, batch)...)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(c, body); err != nil {
		// The request may have reached the leader: outcome unknown.
		f.mu.Lock()
		f.dropLocked(c, fmt.Errorf("%w: forwarding to %s: %v", ErrUnknownOutcome, addr, err))
		f.mu.Unlock()
	}
}

// dropLocked closes c and fails every request sent on it.
func (f *forwarder) dropLocked(c net.Conn, err error) {
	c.Close()
	if f.conn == c {
		f.conn = nil
	}
	for id, req := range f.pending {
		if req.conn == c {
			delete(f.pending, id)
			failAll(req.pubs, err)
		}
	}
}

func (f *forwarder) readLoop(c net.Conn) {
	defer f.n.bg.Done()
	r := newFrameReader(c)
	for {
		b, err := readFrame(r)
		if err == nil {
			err = f.complete(b)
		}
		if err != nil {
			f.mu.Lock()
			f.dropLocked(c, fmt.Errorf("%w: forwarding stream: %v", ErrUnknownOutcome, err))
			f.mu.Unlock()
			return
		}
	}
}

func (f *forwarder) complete(b []byte) error {
	id, outs, derr := decodeFwdResponse(b)
	f.mu.Lock()
	req, ok := f.pending[id]
	delete(f.pending, id)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: response %d does not match a request", ErrBadCommand, id)
	}
	if derr != nil || len(outs) != len(req.pubs) {
		failAll(req.pubs, fmt.Errorf("%w: malformed response from the leader", ErrUnknownOutcome))
		return fmt.Errorf("%w: response %d: %d outcomes for %d publishes: %v", ErrBadCommand, id, len(outs), len(req.pubs), derr)
	}
	for i, p := range req.pubs {
		o := outs[i]
		switch o.status {
		case fwdOK, fwdDup:
			res := Result{Seq: o.seq, Dup: o.status == fwdDup}
			index := o.index
			f.n.fsm.afterApplied(index, func(err error) { p.done(res, index, err) })
		default:
			p.done(Result{}, 0, fwdError(o.status, o.msg))
		}
	}
	return nil
}

// fwdOutcome is one publish's answer in a forwarding response.
type fwdOutcome struct {
	status     byte
	seq, index uint64
	msg        string
}

// maxFwdMsg bounds the error text of one outcome.
const maxFwdMsg = 256

// decodeFwdResponse parses a forwarding response (see the top of this
// file). On error, id is still the request id if it could be read.
func decodeFwdResponse(b []byte) (id uint64, outs []fwdOutcome, err error) {
	rd := reader{b: b}
	id = rd.uvarint()
	count := rd.uvarint()
	if rd.err != nil || count > MaxBatchCount {
		return id, nil, fmt.Errorf("%w: response header", ErrBadCommand)
	}
	outs = make([]fwdOutcome, 0, count)
	for range count {
		st := rd.bytes(1)
		seq, index := rd.uvarint(), rd.uvarint()
		n := rd.uvarint()
		if rd.err != nil || n > maxFwdMsg {
			return id, nil, fmt.Errorf("%w: truncated response", ErrBadCommand)
		}
		msg := rd.bytes(int(n))
		if rd.err != nil {
			return id, nil, fmt.Errorf("%w: truncated response", ErrBadCommand)
		}
		outs = append(outs, fwdOutcome{status: st[0], seq: seq, index: index, msg: string(msg)})
	}
	if len(rd.b) != 0 {
		return id, nil, fmt.Errorf("%w: %d trailing bytes in a response", ErrBadCommand, len(rd.b))
	}
	return id, outs, nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.dropLocked(f.conn, fmt.Errorf("%w: node closing", ErrUnknownOutcome))
	}
}

// peerCertificate returns the DER certificate a cluster peer presented on c
// (nil without cluster TLS).
func peerCertificate(c net.Conn) []byte {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
		return cs.PeerCertificates[0].Raw
	}
	return nil
}
