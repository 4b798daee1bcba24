package crypto

import (
	"bytes"
	"fmt"
	"slices"
)

// Role is a member's role in an operation.
type Role uint8

// Roles (wire values).
const (
	RoleAdmin   Role = 1 // may sign roster changes
	RoleCentre  Role = 2
	RoleOfficer Role = 3
)

func (r Role) valid() bool { return r >= RoleAdmin && r <= RoleOfficer }

// String names the role.
func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleCentre:
		return "centre"
	case RoleOfficer:
		return "officer"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses a role as Role.String names it.
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RoleAdmin, RoleCentre, RoleOfficer} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w %q (admin, centre or officer)", ErrUnknownRole, s)
}

// Member is one entry of a roster.
type Member struct {
	Key     [32]byte // Ed25519 signing public key (the member's id)
	Name    string   // display name from the member's token
	Role    Role
	LeafKey []byte // current leaf HPKE public key (MLKEM768-X25519)
}

// Roster is the verified membership state of an operation after a commit.
// Rosters are immutable values: Apply returns a new one.
type Roster struct {
	OpID    string
	Epoch   uint64
	Head    [32]byte // head hash of the last commit applied
	Members []Member // sorted by Key; the index is the sender index of envelopes in this epoch
}

// Index returns the position of key in Members, or -1.
func (r *Roster) Index(key [32]byte) int {
	i, ok := slices.BinarySearchFunc(r.Members, key, func(m Member, k [32]byte) int {
		return bytes.Compare(m.Key[:], k[:])
	})
	if !ok {
		return -1
	}
	return i
}

// Member returns the member with this key.
func (r *Roster) Member(key [32]byte) (Member, bool) {
	if i := r.Index(key); i >= 0 {
		return r.Members[i], true
	}
	return Member{}, false
}

func (r *Roster) clone() *Roster {
	n := *r
	n.Members = slices.Clone(r.Members)
	return &n
}

// VerifyGenesis checks a genesis commit and returns the initial roster
// (epoch 0): version, operation id, zero Prev, epoch 0, only Add changes with
// valid self-signed tokens, no duplicates, the signer among the added
// members as an admin, its signature, and one sealed secret per member.
func VerifyGenesis(c *Commit) (*Roster, error) {
	if err := checkOpID(c.OpID); err != nil {
		return nil, err
	}
	if c.Prev != ([32]byte{}) || c.Epoch != 0 {
		return nil, fmt.Errorf("%w: prev/epoch not zero", ErrNotGenesis)
	}
	r := &Roster{OpID: c.OpID}
	if len(c.Changes) == 0 || len(c.Changes) > MaxMembers {
		return nil, fmt.Errorf("%w: %d members", ErrNotGenesis, len(c.Changes))
	}
	for _, ch := range c.Changes {
		if ch.Kind != ChangeAdd {
			return nil, fmt.Errorf("%w: %v change", ErrNotGenesis, ch.Kind)
		}
	}
	if err := c.verifySignature(); err != nil {
		return nil, err
	}
	next, err := r.applyChanges(c.Changes, c.Signer, true)
	if err != nil {
		return nil, err
	}
	if m, ok := next.Member(c.Signer); !ok || m.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: creator is not an admin member", ErrNotGenesis)
	}
	if err := checkSealedCount(c, next); err != nil {
		return nil, err
	}
	next.Epoch = 0
	next.Head = c.Hash()
	return next, nil
}

// Apply checks one commit against this roster and returns the resulting
// roster. It is what the relay's state machine calls: it accepts the commit
// only if it is for this operation, names the current head, has epoch
// r.Epoch+1, is signed by an admin of r (or, for a commit whose only change
// is a key update of the signer's own leaf, by any member of r), every
// change is valid, and it carries exactly one sealed secret per resulting
// member. It cannot check that sealed secrets decrypt.
func (r *Roster) Apply(c *Commit) (*Roster, error) {
	if c.OpID != r.OpID {
		return nil, fmt.Errorf("%w: commit for %q, roster %q", ErrWrongOperation, c.OpID, r.OpID)
	}
	if c.Prev != r.Head {
		return nil, ErrNotHead
	}
	if c.Epoch != r.Epoch+1 {
		return nil, fmt.Errorf("%w: %d after %d", ErrBadEpoch, c.Epoch, r.Epoch)
	}
	signer, ok := r.Member(c.Signer)
	if !ok {
		return nil, ErrUnknownSigner
	}
	if err := c.verifySignature(); err != nil {
		return nil, err
	}
	next, err := r.applyChanges(c.Changes, c.Signer, signer.Role == RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := checkSealedCount(c, next); err != nil {
		return nil, err
	}
	next.Epoch = c.Epoch
	next.Head = c.Hash()
	return next, nil
}

func checkSealedCount(c *Commit, next *Roster) error {
	if len(c.Sealed) != len(next.Members) {
		return fmt.Errorf("%w: %d sealed for %d members", ErrSealedSecrets, len(c.Sealed), len(next.Members))
	}
	for _, s := range c.Sealed {
		if len(s) != SealedSecretSize {
			return fmt.Errorf("%w: size %d", ErrSealedSecrets, len(s))
		}
	}
	return nil
}

// applyChanges validates changes by signer and returns the new roster
// (Epoch and Head not yet set). admin reports whether signer may change
// the roster; a non-admin may only commit a single key update of its own
// leaf.
func (r *Roster) applyChanges(changes []Change, signer [32]byte, admin bool) (*Roster, error) {
	if len(changes) == 0 || len(changes) > MaxMembers {
		return nil, fmt.Errorf("%w: %d changes", ErrBadOp, len(changes))
	}
	if !admin && (len(changes) != 1 || changes[0].Kind != ChangeKeyUpdate) {
		return nil, ErrNotAdmin
	}
	next := r.clone()
	seen := make(map[[32]byte]bool, len(changes))
	removed := make(map[[32]byte]bool)
	var added []Member
	for i := range changes {
		ch := &changes[i]
		k := ch.key()
		if seen[k] {
			return nil, fmt.Errorf("%w: member named twice", ErrBadOp)
		}
		seen[k] = true
		idx := r.Index(k)
		switch ch.Kind {
		case ChangeAdd:
			if ch.Token == nil || !ch.Role.valid() {
				return nil, fmt.Errorf("%w: add without token or role", ErrBadOp)
			}
			if err := ch.Token.Verify(); err != nil {
				return nil, err
			}
			if idx >= 0 {
				return nil, fmt.Errorf("%w: add of a present member", ErrBadOp)
			}
			added = append(added, Member{Key: k, Name: ch.Token.Name, Role: ch.Role, LeafKey: slices.Clone(ch.Token.HPKEKey)})
		case ChangeRemove:
			if idx < 0 {
				return nil, fmt.Errorf("%w: remove of an absent member", ErrBadOp)
			}
			removed[k] = true
		case ChangeSetRole:
			if idx < 0 || !ch.Role.valid() {
				return nil, fmt.Errorf("%w: set-role of an absent member or bad role", ErrBadOp)
			}
			next.Members[idx].Role = ch.Role
		case ChangeKeyUpdate:
			if k != signer {
				return nil, ErrForeignKeyUpdate
			}
			if idx < 0 {
				return nil, fmt.Errorf("%w: key update by a non-member", ErrBadOp)
			}
			if len(ch.LeafKey) != HPKEPublicKeySize {
				return nil, fmt.Errorf("%w: leaf key size", ErrBadKey)
			}
			if _, err := kem.NewPublicKey(ch.LeafKey); err != nil {
				return nil, fmt.Errorf("%w: leaf key: %v", ErrBadKey, err)
			}
			next.Members[idx].LeafKey = slices.Clone(ch.LeafKey)
		default:
			return nil, fmt.Errorf("%w: kind %d", ErrBadOp, ch.Kind)
		}
	}
	if len(removed) > 0 {
		next.Members = slices.DeleteFunc(next.Members, func(m Member) bool { return removed[m.Key] })
	}
	next.Members = append(next.Members, added...)
	slices.SortFunc(next.Members, func(a, b Member) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	if len(next.Members) > MaxMembers {
		return nil, ErrTooManyMembers
	}
	if !slices.ContainsFunc(next.Members, func(m Member) bool { return m.Role == RoleAdmin }) {
		return nil, fmt.Errorf("%w: no admin would remain", ErrBadOp)
	}
	return next, nil
}

// VerifyChain verifies an ordered list of commits, starting with a genesis,
// and returns the resulting roster (members, roles, leaf keys, epoch, head).
func VerifyChain(commits []*Commit) (*Roster, error) {
	if len(commits) == 0 {
		return nil, ErrEmptyChain
	}
	r, err := VerifyGenesis(commits[0])
	if err != nil {
		return nil, fmt.Errorf("commit 0: %w", err)
	}
	for i, c := range commits[1:] {
		if r, err = r.Apply(c); err != nil {
			return nil, fmt.Errorf("commit %d: %w", i+1, err)
		}
	}
	return r, nil
}

// CheckCommit decodes an encoded commit and checks it against the current
// roster; with a nil roster it must be a valid genesis. It returns the
// decoded commit and the resulting roster. This is the relay FSM's
// acceptance test.
func CheckCommit(current *Roster, encoded []byte) (*Commit, *Roster, error) {
	c, err := DecodeCommit(encoded)
	if err != nil {
		return nil, nil, err
	}
	var next *Roster
	if current == nil {
		next, err = VerifyGenesis(c)
	} else {
		next, err = current.Apply(c)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, next, nil
}
