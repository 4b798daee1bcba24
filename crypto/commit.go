package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
)

// Commit format constants.
const (
	// CommitVersion is the commit format version byte.
	CommitVersion = 1
	// MaxOpIDLen bounds the operation id (printable ASCII).
	MaxOpIDLen = 64
	// MaxMembers bounds a roster, the changes in one commit and the sealed
	// secrets it carries.
	MaxMembers = 10000
	// SealedSecretSize is the size of one HPKE-sealed epoch secret with
	// MLKEM768-X25519, HKDF-SHA256, ChaCha20-Poly1305: encapsulated key 1120
	// + secret 32 + tag 16.
	SealedSecretSize = 1168

	maxChangeSize = 1 + 1 + 2 + MaxTokenSize // Add is the largest change
	// MaxCommitSize bounds an encoded commit.
	MaxCommitSize = 1 + 1 + MaxOpIDLen + 8 + 32 + 32 + 2 + MaxMembers*maxChangeSize + 2 + MaxMembers*SealedSecretSize + 64
)

// ChangeKind identifies a roster change.
type ChangeKind uint8

// Change kinds (wire values).
const (
	ChangeAdd       ChangeKind = 1 // add Token with Role
	ChangeRemove    ChangeKind = 2 // remove Member
	ChangeSetRole   ChangeKind = 3 // give Member a new Role
	ChangeKeyUpdate ChangeKind = 4 // replace Member's (the signer's own) leaf key with LeafKey
)

// String names the kind.
func (k ChangeKind) String() string {
	switch k {
	case ChangeAdd:
		return "add"
	case ChangeRemove:
		return "remove"
	case ChangeSetRole:
		return "set-role"
	case ChangeKeyUpdate:
		return "key-update"
	}
	return fmt.Sprintf("change(%d)", uint8(k))
}

// Change is one roster change inside a commit. Which fields are used
// depends on Kind: Add uses Token and Role; Remove uses Member; SetRole uses
// Member and Role; KeyUpdate uses Member (must be the commit's signer) and
// LeafKey (the new HPKE public key, signed by the commit signature).
type Change struct {
	Kind    ChangeKind
	Token   *Token
	Member  [32]byte
	Role    Role
	LeafKey []byte
}

// AddMember returns a Change adding the token's identity with role.
func AddMember(t *Token, role Role) Change { return Change{Kind: ChangeAdd, Token: t, Role: role} }

// RemoveMember returns a Change removing the member with this signing key.
func RemoveMember(member [32]byte) Change { return Change{Kind: ChangeRemove, Member: member} }

// SetRole returns a Change giving member a new role.
func SetRole(member [32]byte, role Role) Change {
	return Change{Kind: ChangeSetRole, Member: member, Role: role}
}

// KeyUpdate returns a Change asking Group.Commit to replace the committer's
// leaf key with a freshly generated one.
func KeyUpdate() Change { return Change{Kind: ChangeKeyUpdate} }

// key returns the member a change is about.
func (ch *Change) key() [32]byte {
	if ch.Kind == ChangeAdd && ch.Token != nil {
		return ch.Token.SigningKey
	}
	return ch.Member
}

// Commit is one link of an operation's roster chain: a genesis (Epoch 0,
// zero Prev, only Add changes, signed by its creator) or a change naming the
// previous head, signed by an admin of the previous roster (or by any member
// for a lone key update of its own leaf). It carries the new epoch secret
// sealed to every member of the resulting roster, in roster order.
type Commit struct {
	OpID      string
	Epoch     uint64
	Prev      [32]byte // head hash of the previous roster; zero for genesis
	Signer    [32]byte // Ed25519 public key of the signer
	Changes   []Change
	Sealed    [][]byte // SealedSecretSize bytes each, one per resulting member, in roster order
	Signature [64]byte // Ed25519 over ctxCommitSig || encoding up to the signature
}

func (c *Commit) appendContent(w *writer) {
	w.u8(CommitVersion)
	w.str8(c.OpID)
	w.u64(c.Epoch)
	w.fixed32(c.Prev)
	w.fixed32(c.Signer)
	w.u16(uint16(len(c.Changes)))
	for i := range c.Changes {
		ch := &c.Changes[i]
		w.u8(uint8(ch.Kind))
		switch ch.Kind {
		case ChangeAdd:
			w.u8(uint8(ch.Role))
			var tb []byte
			if ch.Token != nil {
				tb = ch.Token.Marshal()
			}
			w.bytes16(tb)
		case ChangeRemove:
			w.fixed32(ch.Member)
		case ChangeSetRole:
			w.fixed32(ch.Member)
			w.u8(uint8(ch.Role))
		case ChangeKeyUpdate:
			w.fixed32(ch.Member)
			w.bytes16(ch.LeafKey)
		}
	}
}

// content returns the commit's content: everything before the sealed
// secrets. Its hash is bound into every sealed secret's HPKE info.
func (c *Commit) content() []byte {
	w := &writer{}
	c.appendContent(w)
	return w.b
}

// ContentHash returns SHA-256(ctxCommitContent || content).
func (c *Commit) ContentHash() [32]byte {
	return sha256.Sum256(append([]byte(ctxCommitContent), c.content()...))
}

func (c *Commit) unsigned() []byte {
	w := &writer{b: make([]byte, 0, 1024+len(c.Sealed)*(SealedSecretSize))}
	c.appendContent(w)
	w.u16(uint16(len(c.Sealed)))
	for _, s := range c.Sealed {
		w.raw(s)
	}
	return w.b
}

func (c *Commit) signedMessage() []byte {
	return append([]byte(ctxCommitSig), c.unsigned()...)
}

// Encode returns the deterministic encoding of the commit.
func (c *Commit) Encode() []byte {
	return append(c.unsigned(), c.Signature[:]...)
}

// Hash returns the commit's head hash, SHA-256(ctxCommitHead || encoding);
// the next commit names it as Prev.
func (c *Commit) Hash() [32]byte {
	return sha256.Sum256(append([]byte(ctxCommitHead), c.Encode()...))
}

// sign signs the commit with priv.
func (c *Commit) sign(priv ed25519.PrivateKey) {
	c.Signature = [64]byte(ed25519.Sign(priv, c.signedMessage()))
}

func (c *Commit) verifySignature() error {
	if !ed25519.Verify(c.Signer[:], c.signedMessage(), c.Signature[:]) {
		return fmt.Errorf("%w: commit", ErrBadSignature)
	}
	return nil
}

// DecodeCommit parses an encoded commit with strict bounds. It checks
// structure, enum values and token self-signatures, but not the commit
// signature or its validity against a roster (see Roster.Apply,
// VerifyGenesis, VerifyChain, CheckCommit). The encoding is canonical:
// re-encoding the result yields b.
func DecodeCommit(b []byte) (*Commit, error) {
	if len(b) > MaxCommitSize {
		return nil, fmt.Errorf("%w: commit %d bytes", ErrTooLarge, len(b))
	}
	r := &reader{b: b}
	if v := r.u8("commit version"); r.err == nil && v != CommitVersion {
		return nil, fmt.Errorf("%w: commit version %d", ErrVersion, v)
	}
	c := &Commit{}
	c.OpID = r.str8(1, MaxOpIDLen, "op id")
	if r.err == nil {
		if err := checkOpID(c.OpID); err != nil {
			return nil, err
		}
	}
	c.Epoch = r.u64("epoch")
	c.Prev = r.fixed32("prev")
	c.Signer = r.fixed32("signer")
	n := r.boundedLen(int(r.u16("change count")), 1, MaxMembers, "changes")
	if r.err != nil {
		return nil, r.err
	}
	c.Changes = make([]Change, 0, min(n, len(r.b)/33+1))
	for i := 0; i < n; i++ {
		ch := Change{Kind: ChangeKind(r.u8("change kind"))}
		switch ch.Kind {
		case ChangeAdd:
			ch.Role = Role(r.u8("role"))
			tb := r.bytes16(1, MaxTokenSize, "token")
			if r.err != nil {
				return nil, r.err
			}
			t, err := ParseToken(tb)
			if err != nil {
				return nil, fmt.Errorf("change %d: %w", i, err)
			}
			ch.Token = t
		case ChangeRemove:
			ch.Member = r.fixed32("member")
		case ChangeSetRole:
			ch.Member = r.fixed32("member")
			ch.Role = Role(r.u8("role"))
		case ChangeKeyUpdate:
			ch.Member = r.fixed32("member")
			ch.LeafKey = append([]byte(nil), r.bytes16(HPKEPublicKeySize, HPKEPublicKeySize, "leaf key")...)
		default:
			if r.err == nil {
				return nil, fmt.Errorf("%w: change %d kind %d", ErrMalformed, i, ch.Kind)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		if (ch.Kind == ChangeAdd || ch.Kind == ChangeSetRole) && !ch.Role.valid() {
			return nil, fmt.Errorf("%w: change %d role %d", ErrMalformed, i, ch.Role)
		}
		c.Changes = append(c.Changes, ch)
	}
	ns := r.boundedLen(int(r.u16("sealed count")), 1, MaxMembers, "sealed")
	if r.err != nil {
		return nil, r.err
	}
	if ns*SealedSecretSize > len(r.b) {
		return nil, fmt.Errorf("%w: truncated sealed secrets", ErrMalformed)
	}
	c.Sealed = make([][]byte, ns)
	for i := range c.Sealed {
		c.Sealed[i] = append([]byte(nil), r.take(SealedSecretSize, "sealed secret")...)
	}
	copy(c.Signature[:], r.take(64, "signature"))
	if err := r.done("commit"); err != nil {
		return nil, err
	}
	if !bytes.Equal(c.Encode(), b) {
		return nil, fmt.Errorf("%w: non-canonical commit", ErrMalformed)
	}
	return c, nil
}

// checkOpID accepts 1..MaxOpIDLen bytes of printable ASCII (0x21..0x7e).
func checkOpID(s string) error {
	if len(s) == 0 || len(s) > MaxOpIDLen {
		return fmt.Errorf("%w: length %d", ErrBadOpID, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("%w: byte 0x%02x", ErrBadOpID, s[i])
		}
	}
	return nil
}
