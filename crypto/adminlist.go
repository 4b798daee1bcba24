package crypto

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
)

// Admin list format constants.
const (
	// AdminListVersion is the admin list format version byte.
	AdminListVersion = 1
	// MaxAdmins bounds a cluster's admin list.
	MaxAdmins = 256
	// MaxAdminListSize bounds an encoded admin list.
	MaxAdminListSize = 1 + 8 + 32 + 2 + MaxAdmins*(32+1+MaxNameLen)
)

// Admin is one cluster admin: an identity's signing key and a name.
type Admin struct {
	Key  [32]byte
	Name string
}

// AdminList is the cluster's list of admins: a chain of versions, each
// naming the head (Hash) of the one before. Version 0 (the genesis) comes
// from the first node's configuration or, on a cluster that had none, from
// the first accepted admins-add request; every later version results from an
// admins-add or admins-remove request signed by an admin of the version
// before it and naming its head.
type AdminList struct {
	Seq    uint64
	Prev   [32]byte // zero for the genesis
	Admins []Admin
}

// NewAdminList returns a genesis list holding admins.
func NewAdminList(admins []Admin) (*AdminList, error) {
	l := &AdminList{Admins: slices.Clone(admins)}
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *AdminList) check() error {
	if len(l.Admins) == 0 || len(l.Admins) > MaxAdmins {
		return fmt.Errorf("%w: admin list of %d", ErrBadOp, len(l.Admins))
	}
	seen := make(map[[32]byte]bool, len(l.Admins))
	for _, a := range l.Admins {
		if err := checkName(a.Name); err != nil {
			return err
		}
		if seen[a.Key] {
			return fmt.Errorf("%w: admin %s listed twice", ErrBadOp, Fingerprint(a.Key))
		}
		seen[a.Key] = true
	}
	return nil
}

// Encode returns the list's canonical encoding.
func (l *AdminList) Encode() []byte {
	w := &writer{}
	w.u8(AdminListVersion)
	w.u64(l.Seq)
	w.fixed32(l.Prev)
	w.u16(uint16(len(l.Admins)))
	for _, a := range l.Admins {
		w.fixed32(a.Key)
		w.str8(a.Name)
	}
	return w.b
}

// Hash returns the list's head, SHA-256(ctxAdminListHead || encoding); the
// next version names it as Prev.
func (l *AdminList) Hash() [32]byte {
	return sha256.Sum256(append([]byte(ctxAdminListHead), l.Encode()...))
}

// DecodeAdminList parses an encoded admin list with strict bounds.
func DecodeAdminList(b []byte) (*AdminList, error) {
	if len(b) > MaxAdminListSize {
		return nil, fmt.Errorf("%w: admin list %d bytes", ErrTooLarge, len(b))
	}
	r := &reader{b: b}
	if v := r.u8("admin list version"); r.err == nil && v != AdminListVersion {
		return nil, fmt.Errorf("%w: admin list version %d", ErrVersion, v)
	}
	l := &AdminList{Seq: r.u64("admin list seq"), Prev: r.fixed32("admin list prev")}
	n := r.boundedLen(int(r.u16("admin count")), 1, MaxAdmins, "admins")
	for i := 0; i < n && r.err == nil; i++ {
		a := Admin{Key: r.fixed32("admin key")}
		a.Name = r.str8(1, MaxNameLen, "admin name")
		l.Admins = append(l.Admins, a)
	}
	if err := r.done("admin list"); err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

// Contains reports whether key is an admin, comparing against every entry
// in constant time (for a given list length).
func (l *AdminList) Contains(key [32]byte) bool {
	if l == nil {
		return false
	}
	found := 0
	for i := range l.Admins {
		found |= subtle.ConstantTimeCompare(l.Admins[i].Key[:], key[:])
	}
	return found == 1
}

// Authorize checks that req's signer is an admin of l. A nil list (a
// cluster with no admins configured) authorises any validly signed request:
// the node's transport check (loopback or admin certificate) is then the
// only gate.
func (l *AdminList) Authorize(req *AdminRequest) error {
	if l == nil || l.Contains(req.Signer) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotClusterAdmin, req.Fingerprint())
}

// IsAdminListAction reports whether action changes the admin list.
func IsAdminListAction(action string) bool {
	return action == AdminActionAdminsAdd || action == AdminActionAdminsRemove
}

// ApplyRequest returns the list that results from an admins-add or
// admins-remove request applied to l (nil: no list yet, when only an add
// is valid and creates the genesis). It checks that the request names l's
// head and that its signer is authorised (Authorize), but not the
// request's signature, time or nonce (DecodeAdminRequest and the node do).
func (l *AdminList) ApplyRequest(req *AdminRequest) (*AdminList, error) {
	if !IsAdminListAction(req.Action) {
		return nil, fmt.Errorf("%w: %q does not change the admin list", ErrBadOp, req.Action)
	}
	if err := l.Authorize(req); err != nil {
		return nil, err
	}
	var head [32]byte
	if l != nil {
		head = l.Hash()
	}
	prev, err := hex.DecodeString(req.Args["prev"])
	if err != nil || len(prev) != 32 || subtle.ConstantTimeCompare(prev, head[:]) != 1 {
		return nil, fmt.Errorf("%w: admin list change names head %.16s, the current head is %x", ErrNotHead, req.Args["prev"], head[:8])
	}
	key, err := ParseAdminKey(req.Args["key"])
	if err != nil {
		return nil, err
	}
	next := &AdminList{Prev: head}
	if l != nil {
		next.Seq = l.Seq + 1
		next.Admins = slices.Clone(l.Admins)
	}
	switch req.Action {
	case AdminActionAdminsAdd:
		if next.Contains(key) {
			return nil, fmt.Errorf("%w: %s is already an admin", ErrBadOp, Fingerprint(key))
		}
		next.Admins = append(next.Admins, Admin{Key: key, Name: req.Args["name"]})
	case AdminActionAdminsRemove:
		if l == nil {
			return nil, fmt.Errorf("%w: there is no admin list to remove from", ErrBadOp)
		}
		i := slices.IndexFunc(next.Admins, func(a Admin) bool { return a.Key == key })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s is not an admin", ErrBadOp, Fingerprint(key))
		}
		next.Admins = slices.Delete(next.Admins, i, i+1)
		if len(next.Admins) == 0 {
			return nil, fmt.Errorf("%w: the last admin cannot be removed", ErrBadOp)
		}
	}
	if err := next.check(); err != nil {
		return nil, err
	}
	return next, nil
}

// ParseAdminKey decodes a signing key written as 64 hex digits.
func ParseAdminKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("%w: admin key is not 64 hex digits", ErrBadKey)
	}
	copy(k[:], b)
	return k, nil
}
