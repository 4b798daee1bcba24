package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
)

// MaxPastEpochs is how many epochs before the current one a Group keeps
// receiving keys for (late delivery). All of them are deleted as soon as
// the member processes its own key update, which is what gives forward
// secrecy across key updates.
const MaxPastEpochs = 8

// Invite names a member of a new operation's genesis.
type Invite struct {
	Token *Token
	Role  Role
}

// epochState holds one epoch's message keys for this member.
type epochState struct {
	epoch    uint64
	head     [32]byte   // head hash of the commit that started the epoch
	keys     [][32]byte // members' signing keys, by sender index
	names    []string
	self     int // own sender index
	sendCK   [32]byte
	sendNext uint32
	recv     []chain // by sender index; recv[self] unused (zero)
	auth     [32]byte
}

func (e *epochState) destroy() {
	zero(e.sendCK[:])
	zero(e.auth[:])
	for i := range e.recv {
		e.recv[i].destroy()
	}
}

type pendingCommit struct {
	head     [32]byte // head hash of the commit we created
	hasLeaf  bool
	leafSeed [SeedSize]byte // new leaf private seed if it carries our key update
}

// Group is one member's client state for one operation: the verified
// roster, the member's current leaf private key, and the message ratchets
// of the current and a few past epochs. It is not safe for concurrent use.
// Save it with MarshalBinary and restore it with UnmarshalGroup; the saved
// bytes are secret and must be protected like the identity file.
type Group struct {
	id        *Identity
	self      [32]byte
	roster    *Roster // nil until the genesis is processed
	member    bool    // self is in roster
	leafSeed  [SeedSize]byte
	leaf      hpke.PrivateKey
	pending   *pendingCommit
	epochs    []*epochState // ascending; the last is current when member
	destroyed bool
}

// Message is an opened envelope.
type Message struct {
	Plaintext   []byte
	Epoch       uint64
	Sender      [32]byte // sender's Ed25519 public key
	SenderName  string
	SenderIndex uint16
	Index       uint32  // sender's ratchet index
	Missed      uint32  // indices of this sender skipped just now (a gap: dropped or not yet delivered)
	Late        bool    // this message fills an earlier gap (out-of-order delivery)
	Log         LogHead // log chain head the sender had seen
}

// Gap lists a sender's ratchet indices that were skipped and not yet
// delivered in an epoch.
type Gap struct {
	Epoch   uint64
	Sender  [32]byte
	Indices []uint32
}

// NewGroup creates an operation: it builds and signs the genesis commit
// (the creator is added as admin, plus invites), seals the epoch-0 secret to
// every member's initial HPKE key, and returns the creator's Group and the
// encoded genesis to submit to the relay.
func NewGroup(rand io.Reader, id *Identity, opID string, invites []Invite) (*Group, []byte, error) {
	if err := checkOpID(opID); err != nil {
		return nil, nil, err
	}
	self := id.PublicKey()
	changes := []Change{AddMember(id.Token(), RoleAdmin)}
	for _, inv := range invites {
		if inv.Token != nil && inv.Token.SigningKey == self {
			if inv.Role != RoleAdmin {
				return nil, nil, fmt.Errorf("%w: creator must be admin", ErrBadOp)
			}
			continue
		}
		changes = append(changes, AddMember(inv.Token, inv.Role))
	}
	c := &Commit{OpID: opID, Signer: self, Changes: changes}
	next, err := (&Roster{OpID: opID}).applyChanges(changes, self, true)
	if err != nil {
		return nil, nil, err
	}
	if err := sealAndSign(rand, id, c, next); err != nil {
		return nil, nil, err
	}
	g := &Group{id: id, self: self}
	if err := g.processCommit(c); err != nil {
		return nil, nil, err
	}
	return g, c.Encode(), nil
}

// sealAndSign draws a fresh epoch secret, seals it to every member of next
// in roster order, and signs c.
func sealAndSign(rand io.Reader, id *Identity, c *Commit, next *Roster) error {
	secret := make([]byte, EpochSecretSize)
	defer zero(secret)
	if err := readRand(rand, secret); err != nil {
		return err
	}
	content := c.ContentHash()
	c.Sealed = make([][]byte, len(next.Members))
	for i, m := range next.Members {
		s, err := sealEpochSecret(m.LeafKey, sealInfo(c.OpID, c.Epoch, content, m.Key), secret)
		if err != nil {
			return err
		}
		c.Sealed[i] = s
	}
	c.sign(id.sign)
	return nil
}

// JoinGroup builds a member's Group from the operation's commit chain as
// stored by the relay (genesis first). The whole chain is verified; the
// member opens the epoch secret of the commit that (last) added it with its
// initial HPKE key and processes every later commit. It returns ErrNotMember
// if the identity is not in the final roster.
func JoinGroup(id *Identity, commits [][]byte) (*Group, error) {
	if len(commits) == 0 {
		return nil, ErrEmptyChain
	}
	self := id.PublicKey()
	var r *Roster
	var g *Group
	for i, b := range commits {
		c, err := DecodeCommit(b)
		if err != nil {
			return nil, fmt.Errorf("commit %d: %w", i, err)
		}
		if g != nil && g.member {
			if err := g.processCommit(c); err != nil && !errors.Is(err, ErrNotMember) {
				return nil, fmt.Errorf("commit %d: %w", i, err)
			}
			r = g.roster
			continue
		}
		var next *Roster
		if r == nil {
			next, err = VerifyGenesis(c)
		} else {
			next, err = r.Apply(c)
		}
		if err != nil {
			return nil, fmt.Errorf("commit %d: %w", i, err)
		}
		if next.Index(self) >= 0 {
			if g != nil {
				g.Destroy()
			}
			g = &Group{id: id, self: self, roster: r}
			if err := g.processCommit(c); err != nil {
				return nil, fmt.Errorf("commit %d: %w", i, err)
			}
		}
		r = next
	}
	if g == nil || !g.member {
		return nil, ErrNotMember
	}
	return g, nil
}

// ProcessCommit verifies an encoded commit against the current roster,
// opens this member's sealed epoch secret, derives the new epoch's chain
// keys and authenticator, and deletes the epoch secret. If the commit is
// invalid the state is unchanged. If the commit removes this member, the
// roster still advances (so later commits verify) but no keys are received
// and ErrNotMember is returned.
func (g *Group) ProcessCommit(encoded []byte) error {
	if g.destroyed {
		return ErrDestroyed
	}
	c, err := DecodeCommit(encoded)
	if err != nil {
		return err
	}
	return g.processCommit(c)
}

func (g *Group) processCommit(c *Commit) error {
	var next *Roster
	var err error
	wasMember := g.roster != nil && g.member
	if g.roster == nil {
		next, err = VerifyGenesis(c)
	} else {
		next, err = g.roster.Apply(c)
	}
	if err != nil {
		return err
	}
	selfIdx := next.Index(g.self)
	if selfIdx < 0 {
		g.roster, g.member = next, false
		g.clearPending()
		return fmt.Errorf("%w: removed at epoch %d", ErrNotMember, next.Epoch)
	}
	ownUpdate := false
	if c.Signer == g.self {
		for _, ch := range c.Changes {
			ownUpdate = ownUpdate || ch.Kind == ChangeKeyUpdate
		}
	}
	var seed [SeedSize]byte
	defer zero(seed[:])
	switch {
	case ownUpdate:
		if g.pending == nil || !g.pending.hasLeaf || g.pending.head != next.Head {
			return fmt.Errorf("%w: own key update but no pending leaf key", ErrDecrypt)
		}
		seed = g.pending.leafSeed
	case !wasMember:
		seed = g.id.hpkeSeed
	default:
		seed = g.leafSeed
	}
	priv := g.leaf
	if ownUpdate || !wasMember || priv == nil {
		if priv, err = kem.NewPrivateKey(seed[:]); err != nil {
			return fmt.Errorf("%w: leaf seed: %v", ErrBadKey, err)
		}
	}
	if !bytes.Equal(priv.PublicKey().Bytes(), next.Members[selfIdx].LeafKey) {
		return fmt.Errorf("%w: roster leaf key is not ours", ErrBadKey)
	}
	secret, err := openEpochSecret(priv, sealInfo(c.OpID, c.Epoch, c.ContentHash(), g.self), c.Sealed[selfIdx])
	if err != nil {
		return err
	}
	chains, auth, err := deriveEpoch(secret, next)
	zero(secret)
	if err != nil {
		return err
	}
	es := &epochState{epoch: next.Epoch, head: next.Head, self: selfIdx, auth: auth}
	es.keys = make([][32]byte, len(next.Members))
	es.names = make([]string, len(next.Members))
	es.recv = make([]chain, len(next.Members))
	for i, m := range next.Members {
		es.keys[i], es.names[i] = m.Key, m.Name
		es.recv[i].ck = chains[i]
		zero(chains[i][:])
	}
	es.sendCK = es.recv[selfIdx].ck
	zero(es.recv[selfIdx].ck[:])

	// Commit the new state.
	if ownUpdate {
		for _, old := range g.epochs {
			old.destroy()
		}
		g.epochs = nil
	}
	g.epochs = append(g.epochs, es)
	if over := len(g.epochs) - (MaxPastEpochs + 1); over > 0 {
		for _, old := range g.epochs[:over] {
			old.destroy()
		}
		g.epochs = append([]*epochState(nil), g.epochs[over:]...)
	}
	if seed != g.leafSeed {
		zero(g.leafSeed[:])
		g.leafSeed = seed
	}
	g.leaf = priv
	g.roster, g.member = next, true
	g.clearPending()
	return nil
}

func (g *Group) clearPending() {
	if g.pending != nil {
		zero(g.pending.leafSeed[:])
		g.pending = nil
	}
}

// Commit creates a commit applying changes to the current roster, with a
// fresh epoch secret (from rand) sealed to every resulting member's leaf
// key. A KeyUpdate() change generates a new leaf key pair (from rand) for
// this member. Non-admins may only commit a lone KeyUpdate. The state does
// not change until the commit comes back through ProcessCommit (the relay
// may reject it if another commit won); a later Commit replaces the
// pending one.
func (g *Group) Commit(rand io.Reader, changes ...Change) ([]byte, error) {
	if g.destroyed {
		return nil, ErrDestroyed
	}
	if !g.member {
		return nil, ErrNotMember
	}
	me, _ := g.roster.Member(g.self)
	p := &pendingCommit{}
	cs := make([]Change, len(changes))
	copy(cs, changes)
	for i := range cs {
		if cs[i].Kind != ChangeKeyUpdate {
			continue
		}
		if p.hasLeaf {
			return nil, fmt.Errorf("%w: two key updates", ErrBadOp)
		}
		if err := readRand(rand, p.leafSeed[:]); err != nil {
			return nil, err
		}
		priv, err := kem.NewPrivateKey(p.leafSeed[:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		p.hasLeaf = true
		cs[i].Member = g.self
		cs[i].LeafKey = priv.PublicKey().Bytes()
	}
	c := &Commit{OpID: g.roster.OpID, Epoch: g.roster.Epoch + 1, Prev: g.roster.Head, Signer: g.self, Changes: cs}
	next, err := g.roster.applyChanges(cs, g.self, me.Role == RoleAdmin)
	if err != nil {
		zero(p.leafSeed[:])
		return nil, err
	}
	if err := sealAndSign(rand, g.id, c, next); err != nil {
		zero(p.leafSeed[:])
		return nil, err
	}
	g.clearPending()
	p.head = c.Hash()
	g.pending = p
	return c.Encode(), nil
}

// Seal encrypts plaintext (at most MaxPlaintext bytes) as the next message
// of this member's sending chain in the current epoch, naming log as the
// log chain head last seen, and signs the envelope. The message key is
// deleted.
func (g *Group) Seal(plaintext []byte, log LogHead) ([]byte, error) {
	if g.destroyed {
		return nil, ErrDestroyed
	}
	if !g.member || len(g.epochs) == 0 {
		return nil, ErrNotMember
	}
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("%w: plaintext %d bytes", ErrTooLarge, len(plaintext))
	}
	es := g.epochs[len(g.epochs)-1]
	if es.sendNext == math.MaxUint32 {
		return nil, ErrChainExhausted
	}
	mk := step(&es.sendCK)
	defer zero(mk[:])
	h := EnvelopeHeader{Epoch: es.epoch, SenderIndex: uint16(es.self), Index: es.sendNext, Log: log}
	es.sendNext++
	padded := pad(plaintext)
	defer zero(padded)
	aead, err := chacha20poly1305.NewX(mk[:chacha20poly1305.KeySize])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(padded)+EnvelopeOverhead)
	out = h.append(out)
	out = aead.Seal(out, mk[chacha20poly1305.KeySize:], padded, out[:EnvelopeHeaderSize])
	sig := ed25519.Sign(g.id.sign, envelopeSigMessage(g.roster.OpID, es.head, out))
	return append(out, sig...), nil
}

// maxSkipSent bounds how far SkipSent advances a sending chain in one call.
const maxSkipSent = 1 << 20

// SkipSent moves this member's sending chain in epoch past index, deleting
// the skipped message keys. A client calls it for every envelope of its own
// that it reads from the log, so that a state restored from an older copy
// (a device backup, a rollback of its files) never seals with a message key
// it already used. It does nothing if the chain is already past index or
// the epoch's keys are gone.
func (g *Group) SkipSent(epoch uint64, index uint32) error {
	if g.destroyed {
		return ErrDestroyed
	}
	es := g.epochState(epoch)
	if es == nil || es.sendNext > index {
		return nil
	}
	if index-es.sendNext >= maxSkipSent {
		return fmt.Errorf("%w: own index %d is %d past the sending chain", ErrChainExhausted, index, index-es.sendNext)
	}
	for es.sendNext <= index {
		mk := step(&es.sendCK)
		zero(mk[:])
		if es.sendNext == math.MaxUint32 {
			break
		}
		es.sendNext++
	}
	return nil
}

func (g *Group) epochState(epoch uint64) *epochState {
	for _, e := range g.epochs {
		if e.epoch == epoch {
			return e
		}
	}
	return nil
}

// Open verifies and decrypts an envelope of this operation. The signature
// is checked first, against the sender's key in the envelope's epoch, so
// every later error concerns an authentic envelope. A replay (or a message
// older than the skipped-key window) returns a *ReplayError (ErrReplay);
// Message.Missed and Message.Late report gaps and out-of-order delivery.
func (g *Group) Open(env []byte) (*Message, error) {
	if g.destroyed {
		return nil, ErrDestroyed
	}
	h, err := ParseEnvelopeHeader(env)
	if err != nil {
		return nil, err
	}
	es := g.epochState(h.Epoch)
	if es == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEpoch, h.Epoch)
	}
	if int(h.SenderIndex) >= len(es.keys) {
		return nil, ErrUnknownSender
	}
	sender := es.keys[h.SenderIndex]
	n := len(env) - ed25519.SignatureSize
	if !ed25519.Verify(sender[:], envelopeSigMessage(g.roster.OpID, es.head, env[:n]), env[n:]) {
		return nil, fmt.Errorf("%w: envelope", ErrBadSignature)
	}
	if int(h.SenderIndex) == es.self {
		return nil, ErrOwnEnvelope
	}
	ch := &es.recv[h.SenderIndex]
	l, ok, replay := ch.lookup(h.Index)
	if !ok {
		if replay {
			return nil, &ReplayError{Epoch: h.Epoch, Sender: sender, Index: h.Index}
		}
		return nil, fmt.Errorf("%w: index %d, next %d", ErrTooFarAhead, h.Index, ch.next)
	}
	defer l.destroy()
	aead, err := chacha20poly1305.NewX(l.key[:chacha20poly1305.KeySize])
	if err != nil {
		return nil, err
	}
	padded, err := aead.Open(nil, l.key[chacha20poly1305.KeySize:], env[EnvelopeHeaderSize:n], env[:EnvelopeHeaderSize])
	if err != nil {
		return nil, fmt.Errorf("%w: envelope", ErrDecrypt)
	}
	ch.commit(h.Index, &l)
	pt, err := unpad(padded)
	if err != nil {
		return nil, err
	}
	return &Message{
		Plaintext:   pt,
		Epoch:       h.Epoch,
		Sender:      sender,
		SenderName:  es.names[h.SenderIndex],
		SenderIndex: h.SenderIndex,
		Index:       h.Index,
		Missed:      l.missed,
		Late:        l.late,
		Log:         h.Log,
	}, nil
}

// Gaps lists, per epoch and sender, the ratchet indices skipped over and
// not yet delivered (within the MaxSkip window).
func (g *Group) Gaps() []Gap {
	var out []Gap
	for _, e := range g.epochs {
		for i := range e.recv {
			if len(e.recv[i].skipped) == 0 {
				continue
			}
			gp := Gap{Epoch: e.epoch, Sender: e.keys[i]}
			for _, s := range e.recv[i].skipped {
				gp.Indices = append(gp.Indices, s.index)
			}
			out = append(out, gp)
		}
	}
	return out
}

// OpID returns the operation id ("" before the genesis is processed).
func (g *Group) OpID() string {
	if g.roster == nil {
		return ""
	}
	return g.roster.OpID
}

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 {
	if g.roster == nil {
		return 0
	}
	return g.roster.Epoch
}

// Head returns the head hash of the last processed commit.
func (g *Group) Head() [32]byte {
	if g.roster == nil {
		return [32]byte{}
	}
	return g.roster.Head
}

// Roster returns a copy of the current verified roster.
func (g *Group) Roster() *Roster {
	if g.roster == nil {
		return nil
	}
	return g.roster.clone()
}

// IsMember reports whether this identity is in the current roster.
func (g *Group) IsMember() bool { return g.member }

// EpochAuthenticator returns the current epoch's authenticator: a value
// every member of the epoch derives identically from the epoch secret and
// nobody else can compute. Members may compare it (or a hash of it) to
// confirm they share the epoch.
func (g *Group) EpochAuthenticator() [32]byte {
	if !g.member || len(g.epochs) == 0 {
		return [32]byte{}
	}
	return g.epochs[len(g.epochs)-1].auth
}

// Destroy zeroes the group's secrets. The Group must not be used afterwards
// (methods return ErrDestroyed).
func (g *Group) Destroy() {
	for _, e := range g.epochs {
		e.destroy()
	}
	g.epochs = nil
	zero(g.leafSeed[:])
	g.leaf = nil
	g.clearPending()
	g.destroyed = true
}

func (l *chainLookup) destroy() {
	zero(l.key[:])
	zero(l.newCK[:])
	for i := range l.newSkip {
		zero(l.newSkip[i].key[:])
	}
}
