package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// commandMembership is a forwarding-only request (never a Raft entry): a
// follower asks the leader to change the configuration.
//
//	kind   1 byte   commandMembership
//	action 1 byte   memberAdd or memberRemove
//	id     uvarint length, bytes (1..128)
//	addr   uvarint length, bytes (0..256; empty for remove)
const commandMembership byte = 3

const (
	memberAdd    byte = 1
	memberRemove byte = 2
	// memberJoin is a node asking to be added itself (relayd --join); the
	// node that takes it records the join, with the certificate the
	// joining node presented, in the audit trail.
	memberJoin byte = 3
)

// membershipTimeout bounds a configuration change.
const membershipTimeout = 30 * time.Second

// ErrMembership wraps failed configuration changes.
var ErrMembership = errors.New("cluster: membership change failed")

// AddVoter adds a node (id, Raft address) as a voter. On a follower the
// request is relayed to the leader. Adding a node that is already a member
// with the same address succeeds.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if id == "" || len(id) > 128 || addr == "" || len(addr) > 256 {
		return fmt.Errorf("%w: node id and address required", ErrInvalid)
	}
	return n.membership(ctx, memberAdd, id, addr)
}

// RemoveServer removes a node from the configuration. On a follower the
// request is relayed to the leader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: node id required", ErrInvalid)
	}
	return n.membership(ctx, memberRemove, id, "")
}

func (n *Node) membership(ctx context.Context, action byte, id, addr string) error {
	if n.raft.State() == raft.Leader {
		return n.applyMembership(action, id, addr)
	}
	leader, _ := n.raft.LeaderWithID()
	if leader == "" {
		return ErrNotLeader
	}
	return n.sendMembership(ctx, string(leader), action, id, addr)
}

// JoinVia asks the cluster node at peer (its Raft address) to add this node
// as a voter. The request travels over the cluster channel, so with cluster
// TLS only a holder of a node certificate from the cluster CA can join. The
// peer relays the request to its leader if it is a follower.
func (n *Node) JoinVia(ctx context.Context, peer string) error {
	return n.sendMembership(ctx, peer, memberJoin, n.cfg.NodeID, n.cfg.RaftAdvertise)
}

// sendMembership sends a membership request to the node at target over the
// forwarding stream and waits for its answer.
func (n *Node) sendMembership(ctx context.Context, target string, action byte, id, addr string) error {
	body := []byte{commandMembership, action}
	body = binary.AppendUvarint(body, uint64(len(id)))
	body = append(body, id...)
	body = binary.AppendUvarint(body, uint64(len(addr)))
	body = append(body, addr...)
	st, _, _, msg, err := n.forwardRequest(ctx, target, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMembership, err)
	}
	if st != fwdOK {
		return fmt.Errorf("%w: %s", ErrMembership, msg)
	}
	return nil
}

// forwardRequest sends one request (a membership or admin command) to the
// node at target over the forwarding stream and returns its answer.
func (n *Node) forwardRequest(ctx context.Context, target string, body []byte) (status byte, seq, index uint64, msg string, err error) {
	c, err := n.mux.dial(target, streamForward, 5*time.Second)
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("%w: reach %s: %w", ErrNotLeader, target, err)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	} else {
		_ = c.SetDeadline(time.Now().Add(membershipTimeout + 5*time.Second))
	}
	frame := append(binary.AppendUvarint(nil, 1), body...)
	if err := writeFrame(c, frame); err != nil {
		return 0, 0, 0, "", err
	}
	resp, err := readFrame(newFrameReader(c))
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("no answer from %s: %w", target, err)
	}
	_, outs, err := decodeFwdResponse(resp)
	if err != nil || len(outs) != 1 {
		return 0, 0, 0, "", fmt.Errorf("bad answer from %s", target)
	}
	o := outs[0]
	return o.status, o.seq, o.index, o.msg, nil
}

// applyMembership changes the configuration on the leader.
func (n *Node) applyMembership(action byte, id, addr string) error {
	var f raft.IndexFuture
	switch action {
	case memberAdd:
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	case memberRemove:
		f = n.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout)
	default:
		return fmt.Errorf("%w: unknown action %d", ErrInvalid, action)
	}
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return ErrNotLeader
		}
		return fmt.Errorf("%w: %v", ErrMembership, err)
	}
	verb := map[byte]string{memberAdd: "added", memberRemove: "removed"}[action]
	n.cfg.Logger.Info("cluster membership changed", "action", verb, "node", id, "raft", addr)
	return nil
}

// decodeMembership parses a membership request.
func decodeMembership(b []byte) (action byte, id, addr string, err error) {
	rd := reader{b: b}
	k := rd.bytes(2)
	idLen := rd.uvarint()
	if rd.err != nil || k[0] != commandMembership || idLen == 0 || idLen > 128 {
		return 0, "", "", fmt.Errorf("%w: membership request", ErrBadCommand)
	}
	id = string(rd.bytes(int(idLen)))
	addrLen := rd.uvarint()
	if rd.err != nil || addrLen > 256 {
		return 0, "", "", fmt.Errorf("%w: membership request", ErrBadCommand)
	}
	addr = string(rd.bytes(int(addrLen)))
	if rd.err != nil || len(rd.b) != 0 {
		return 0, "", "", fmt.Errorf("%w: membership request", ErrBadCommand)
	}
	return k[1], id, addr, nil
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == leader})
	}
	return out, nil
}

// TransferLeadership hands leadership to another voter if this node leads
// a cluster of more than one voter; it returns once the transfer is done or
// failed. A node shutting down gracefully calls it first.
func (n *Node) TransferLeadership() error {
	if n.raft.State() != raft.Leader {
		return nil
	}
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter.String() {
			voters++
		}
	}
	if voters < 2 {
		return nil
	}
	return n.raft.LeadershipTransfer().Error()
}
