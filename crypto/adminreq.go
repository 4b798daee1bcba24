package crypto

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"sort"
)

// Admin request format constants.
const (
	// AdminRequestVersion is the admin request format version byte.
	AdminRequestVersion = 1
	// AdminNonceSize is the size of an admin request's fresh nonce.
	AdminNonceSize = 16
	// MaxAdminAction bounds an action name.
	MaxAdminAction = 32
	// MaxAdminNode bounds the node id a request is addressed to.
	MaxAdminNode = 128
	// MaxAdminArgs bounds the arguments of one request.
	MaxAdminArgs = 16
	// MaxAdminArgKey bounds an argument name.
	MaxAdminArgKey = 32
	// MaxAdminArgValue bounds an argument value.
	MaxAdminArgValue = 512
	// MaxAdminRequestSize bounds an encoded admin request.
	MaxAdminRequestSize = 1 + 1 + MaxAdminAction + 1 + MaxAdminNode + 8 + AdminNonceSize + 1 +
		MaxAdminArgs*(1+MaxAdminArgKey+2+MaxAdminArgValue) + 32 + 64
)

// Admin actions the cluster knows. Others may be added; an action name is
// 1..MaxAdminAction bytes of a-z, 0-9 and '-'.
const (
	AdminActionJoin         = "join"          // args: id, address
	AdminActionRemove       = "remove"        // args: id
	AdminActionBackup       = "backup"        // no args
	AdminActionAdminsAdd    = "admins-add"    // args: key (hex), name, prev (hex head of the current list)
	AdminActionAdminsRemove = "admins-remove" // args: key (hex), prev
	AdminActionRetention    = "retention"     // args: op, max_age, max_count (decimal), clear (true|false)
)

// AdminRequest is a statement by which a cluster admin asks one node to
// do one thing: an action with its arguments, addressed to a node, at a
// time, with a fresh nonce, signed by the admin's identity key under its own
// context string. Nodes accept it only within a time window around Time and
// only once (nonce), and record it in the audit trail.
type AdminRequest struct {
	Action    string
	Node      string
	Time      int64 // Unix milliseconds, the signer's clock
	Nonce     [AdminNonceSize]byte
	Args      map[string]string
	Signer    [32]byte
	Signature [64]byte
}

// NewAdminRequest builds and signs a request with id, drawing the nonce
// from rand. now is the signer's clock in Unix milliseconds.
func NewAdminRequest(rand io.Reader, id *Identity, action, node string, nowMS int64, args map[string]string) (*AdminRequest, error) {
	r := &AdminRequest{Action: action, Node: node, Time: nowMS, Args: args, Signer: id.PublicKey()}
	if err := readRand(rand, r.Nonce[:]); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	r.Signature = [64]byte(ed25519.Sign(id.sign, r.signedMessage()))
	return r, nil
}

func validAction(s string) bool {
	if len(s) == 0 || len(s) > MaxAdminAction {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// check validates the fields' bounds.
func (r *AdminRequest) check() error {
	switch {
	case !validAction(r.Action):
		return fmt.Errorf("%w: admin action %q", ErrMalformed, r.Action)
	case len(r.Node) == 0 || len(r.Node) > MaxAdminNode:
		return fmt.Errorf("%w: admin request node id of %d bytes", ErrMalformed, len(r.Node))
	case r.Time < 0:
		return fmt.Errorf("%w: admin request time %d", ErrMalformed, r.Time)
	case len(r.Args) > MaxAdminArgs:
		return fmt.Errorf("%w: %d admin request arguments", ErrTooLarge, len(r.Args))
	}
	for k, v := range r.Args {
		if len(k) == 0 || len(k) > MaxAdminArgKey || len(v) > MaxAdminArgValue {
			return fmt.Errorf("%w: admin request argument %q", ErrMalformed, k)
		}
	}
	return nil
}

func (r *AdminRequest) unsigned() []byte {
	w := &writer{}
	w.u8(AdminRequestVersion)
	w.str8(r.Action)
	w.str8(r.Node)
	w.u64(uint64(r.Time))
	w.raw(r.Nonce[:])
	keys := make([]string, 0, len(r.Args))
	for k := range r.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.u8(uint8(len(keys)))
	for _, k := range keys {
		w.str8(k)
		w.bytes16([]byte(r.Args[k]))
	}
	w.fixed32(r.Signer)
	return w.b
}

func (r *AdminRequest) signedMessage() []byte {
	return append([]byte(ctxAdminRequest), r.unsigned()...)
}

// Encode returns the request's canonical encoding.
func (r *AdminRequest) Encode() []byte {
	return append(r.unsigned(), r.Signature[:]...)
}

// Fingerprint returns the signer's fingerprint.
func (r *AdminRequest) Fingerprint() string { return Fingerprint(r.Signer) }

// DecodeAdminRequest parses an encoded admin request with strict bounds and
// verifies its signature against the key it names. Whether that key is a
// cluster admin is for the caller (AdminList.Authorize) to decide.
func DecodeAdminRequest(b []byte) (*AdminRequest, error) {
	r, err := decodeAdminRequest(b)
	if err != nil {
		return nil, err
	}
	if err := r.verify(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *AdminRequest) verify() error {
	if !ed25519.Verify(r.Signer[:], r.signedMessage(), r.Signature[:]) {
		return fmt.Errorf("%w: admin request", ErrBadSignature)
	}
	return nil
}

// decodeAdminRequest parses without checking the signature.
func decodeAdminRequest(b []byte) (*AdminRequest, error) {
	if len(b) > MaxAdminRequestSize {
		return nil, fmt.Errorf("%w: admin request %d bytes", ErrTooLarge, len(b))
	}
	rd := &reader{b: b}
	if v := rd.u8("admin request version"); rd.err == nil && v != AdminRequestVersion {
		return nil, fmt.Errorf("%w: admin request version %d", ErrVersion, v)
	}
	r := &AdminRequest{}
	r.Action = rd.str8(1, MaxAdminAction, "admin action")
	r.Node = rd.str8(1, MaxAdminNode, "admin node")
	r.Time = int64(rd.u64("admin time"))
	copy(r.Nonce[:], rd.take(AdminNonceSize, "admin nonce"))
	n := rd.boundedLen(int(rd.u8("admin args")), 0, MaxAdminArgs, "admin args")
	if rd.err != nil {
		return nil, rd.err
	}
	r.Args = make(map[string]string, n)
	last := ""
	for i := 0; i < n; i++ {
		k := rd.str8(1, MaxAdminArgKey, "admin arg key")
		v := rd.bytes16(0, MaxAdminArgValue, "admin arg value")
		if rd.err != nil {
			return nil, rd.err
		}
		if i > 0 && k <= last {
			return nil, fmt.Errorf("%w: admin request arguments not sorted", ErrMalformed)
		}
		last = k
		r.Args[k] = string(v)
	}
	r.Signer = rd.fixed32("admin signer")
	copy(r.Signature[:], rd.take(64, "admin signature"))
	if err := rd.done("admin request"); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if !bytes.Equal(r.Encode(), b) {
		return nil, fmt.Errorf("%w: non-canonical admin request", ErrMalformed)
	}
	return r, nil
}
