package cluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"time"

	"liaison/crypto"
)

// AdminRequestHeader is the HTTP header that carries a signed
// crypto.AdminRequest (unpadded base64url of its encoding) on every
// cluster-changing admin request.
const AdminRequestHeader = "Liaison-Admin-Request"

// maxAdminHeader bounds the header's length before decoding.
const maxAdminHeader = (crypto.MaxAdminRequestSize*4 + 2) / 3

// AuthorizeAdminHTTP is AuthorizeAdmin for an HTTP request: the statement
// comes from its AdminRequestHeader.
func (n *Node) AuthorizeAdminHTTP(r *http.Request, action string, args map[string]string) (*crypto.AdminRequest, error) {
	return n.authorizeHTTP(r.Context(), r, action, args)
}

func (n *Node) authorizeHTTP(ctx context.Context, r *http.Request, action string, args map[string]string) (*crypto.AdminRequest, error) {
	h := r.Header.Get(AdminRequestHeader)
	if h == "" {
		return nil, fmt.Errorf("%w: the request carries no admin signature (header %s); liaison admin signs with --identity", ErrUnauthorized, AdminRequestHeader)
	}
	if len(h) > maxAdminHeader {
		return nil, fmt.Errorf("%w: %s header of %d bytes", ErrUnauthorized, AdminRequestHeader, len(h))
	}
	stmt, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %v", ErrUnauthorized, AdminRequestHeader, err)
	}
	return n.AuthorizeAdmin(ctx, stmt, action, args)
}

// AuthorizeAdmin is the one gate for admin actions that change the
// cluster. stmt is an encoded crypto.AdminRequest; it must be signed by a
// cluster admin in the replicated admin list (compared in constant time; a
// cluster with no admin list accepts any valid signature, leaving the
// transport check as the gate), name exactly this action and these args,
// be addressed to this node, be signed within crypto.AdminRequestWindowMS
// of this node's clock, and carry a nonce never accepted before.
//
// It then appends the request to the audit trail through Raft (the FSM
// repeats the signer, window and nonce checks against the leader's clock
// and the replicated nonce index, so a replay to any node is refused) and,
// for admins-add and admins-remove, changes the admin list in the same
// entry. A nil error means the action is authorised and already audited:
// the caller performs it. Errors wrap ErrUnauthorized (refused),
// ErrStaleHead or ErrInvalid (an admin list change that does not apply),
// ErrNotLeader (no leader: nothing recorded) or ErrUnknownOutcome.
func (n *Node) AuthorizeAdmin(ctx context.Context, stmt []byte, action string, args map[string]string) (*crypto.AdminRequest, error) {
	req, err := crypto.DecodeAdminRequest(stmt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	switch {
	case req.Action != action:
		return nil, fmt.Errorf("%w: the signed request is for %q, not %q", ErrUnauthorized, req.Action, action)
	case req.Node != n.cfg.NodeID:
		return nil, fmt.Errorf("%w: the signed request is addressed to node %q, this is %q", ErrUnauthorized, req.Node, n.cfg.NodeID)
	case !maps.Equal(req.Args, args):
		return nil, fmt.Errorf("%w: the signed arguments differ from the request's", ErrUnauthorized)
	}
	if _, err := checkAdminRequest(n.st.adminList(), req, time.Now().UnixMilli(), "this node's", n.st.nonceUsed); err != nil {
		return nil, err
	}
	if _, err := n.submitAdmin(ctx, commandAdminAction, stmt); err != nil {
		return nil, err
	}
	n.cfg.Logger.Info("admin action authorised and audited", "action", req.Action, "admin", req.Fingerprint(), "args", req.Args)
	return req, nil
}

// submitAdmin commits an admin command (kinds 6-8) through Raft, via the
// leader, and returns its audit sequence once this node has applied it.
func (n *Node) submitAdmin(ctx context.Context, kind byte, body []byte) (uint64, error) {
	return n.propose(ctx, append([]byte{kind}, body...))
}

// recordJoin appends a node-join entry (with the certificate the node
// presented, if any) to the audit trail. The join has happened; a failure
// to record it is logged.
func (n *Node) recordJoin(ctx context.Context, id, addr string, cert []byte) {
	if len(cert) > crypto.MaxAuditCert {
		cert = nil
	}
	if _, err := n.submitAdmin(ctx, commandNodeJoin, crypto.NodeJoinBody(id, addr, n.cfg.NodeID, cert)); err != nil {
		n.cfg.Logger.Error("node joined, but recording it in the audit trail failed", "node", id, "err", err)
	}
}

// BootstrapAdmins writes the cluster's first admin list (from the first
// node's configuration) through Raft, as the genesis of the admin list and
// an entry of the audit trail. It waits for a leader. If the cluster already
// has an admin list it changes nothing and returns ErrAdminsExist.
func (n *Node) BootstrapAdmins(ctx context.Context, admins []crypto.Admin) error {
	if n.st.adminList() != nil {
		return ErrAdminsExist
	}
	l, err := crypto.NewAdminList(admins)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := n.WaitLeader(ctx); err != nil {
		return err
	}
	_, err = n.submitAdmin(ctx, commandAdminBootstrap, crypto.AdminBootstrapBody(n.cfg.NodeID, l))
	return err
}

// Admins returns the cluster's current admin list, nil if it has none.
// The list must not be modified.
func (n *Node) Admins() *crypto.AdminList { return n.st.adminList() }

// AuditHead returns the sequence and hash of the audit trail's last entry
// on this node (0 and zero for an empty trail).
func (n *Node) AuditHead() (uint64, [HashLen]byte) { return n.st.auditHead() }

// ReadAudit returns up to maxCount encoded audit entries (crypto.AuditEntry)
// from sequence from, about maxBytes at most (at least one entry).
func (n *Node) ReadAudit(from uint64, maxCount, maxBytes int) ([][]byte, error) {
	return n.st.readAudit(from, maxCount, maxBytes)
}
