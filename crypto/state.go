package crypto

import (
	"bytes"
	"fmt"
)

const (
	stateMagic   = "LGST"
	stateVersion = 1
)

// MarshalBinary serialises the group state (roster, leaf private seed,
// pending commit, message ratchets and skipped keys) so a client can save
// it. It does not include the identity's keys. The result is secret.
func (g *Group) MarshalBinary() ([]byte, error) {
	if g.destroyed {
		return nil, ErrDestroyed
	}
	w := &writer{}
	w.raw([]byte(stateMagic))
	w.u8(stateVersion)
	w.fixed32(g.self)
	if g.roster == nil {
		w.u8(0)
	} else {
		w.u8(1)
		r := g.roster
		w.str8(r.OpID)
		w.u64(r.Epoch)
		w.fixed32(r.Head)
		w.u16(uint16(len(r.Members)))
		for _, m := range r.Members {
			w.fixed32(m.Key)
			w.str8(m.Name)
			w.u8(uint8(m.Role))
			w.bytes16(m.LeafKey)
		}
	}
	w.u8(boolByte(g.member))
	w.raw(g.leafSeed[:])
	if g.pending == nil {
		w.u8(0)
	} else {
		w.u8(1)
		w.fixed32(g.pending.head)
		w.u8(boolByte(g.pending.hasLeaf))
		w.raw(g.pending.leafSeed[:])
	}
	w.u8(uint8(len(g.epochs)))
	for _, e := range g.epochs {
		w.u64(e.epoch)
		w.fixed32(e.head)
		w.fixed32(e.auth)
		w.u16(uint16(len(e.keys)))
		w.u16(uint16(e.self))
		w.fixed32(e.sendCK)
		w.u32(e.sendNext)
		for i := range e.keys {
			w.fixed32(e.keys[i])
			w.str8(e.names[i])
			c := &e.recv[i]
			w.fixed32(c.ck)
			w.u32(c.next)
			w.u16(uint16(len(c.skipped)))
			for _, s := range c.skipped {
				w.u32(s.index)
				w.raw(s.key[:])
			}
		}
	}
	return w.b, nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (r *reader) bool(what string) bool {
	v := r.u8(what)
	if r.err == nil && v > 1 {
		r.err = fmt.Errorf("%w: %s flag %d", ErrMalformed, what, v)
	}
	return v == 1
}

// UnmarshalGroup restores a Group saved with MarshalBinary for identity id.
// The input is parsed with the same bounds as wire formats.
func UnmarshalGroup(id *Identity, b []byte) (*Group, error) {
	r := &reader{b: b}
	if string(r.take(4, "state magic")) != stateMagic || r.u8("state version") != stateVersion {
		if r.err != nil {
			return nil, r.err
		}
		return nil, fmt.Errorf("%w: group state", ErrVersion)
	}
	g := &Group{id: id}
	g.self = r.fixed32("self")
	if r.err == nil && g.self != id.PublicKey() {
		return nil, fmt.Errorf("%w: state belongs to another identity", ErrBadKey)
	}
	if r.bool("roster") {
		ro := &Roster{}
		ro.OpID = r.str8(1, MaxOpIDLen, "op id")
		ro.Epoch = r.u64("epoch")
		ro.Head = r.fixed32("head")
		n := r.boundedLen(int(r.u16("members")), 1, MaxMembers, "members")
		if r.err != nil {
			return nil, r.err
		}
		ro.Members = make([]Member, 0, min(n, len(r.b)/36))
		for i := 0; i < n && r.err == nil; i++ {
			m := Member{Key: r.fixed32("key"), Name: r.str8(1, MaxNameLen, "name"), Role: Role(r.u8("role"))}
			m.LeafKey = append([]byte(nil), r.bytes16(HPKEPublicKeySize, HPKEPublicKeySize, "leaf")...)
			if r.err == nil && (!m.Role.valid() || checkName(m.Name) != nil ||
				(i > 0 && bytes.Compare(ro.Members[i-1].Key[:], m.Key[:]) >= 0)) {
				return nil, fmt.Errorf("%w: roster member %d", ErrMalformed, i)
			}
			ro.Members = append(ro.Members, m)
		}
		if r.err == nil && checkOpID(ro.OpID) != nil {
			return nil, fmt.Errorf("%w: op id", ErrMalformed)
		}
		g.roster = ro
	}
	g.member = r.bool("member")
	copy(g.leafSeed[:], r.take(SeedSize, "leaf seed"))
	if r.bool("pending") {
		p := &pendingCommit{head: r.fixed32("pending head"), hasLeaf: r.bool("pending leaf")}
		copy(p.leafSeed[:], r.take(SeedSize, "pending seed"))
		g.pending = p
	}
	ne := r.boundedLen(int(r.u8("epochs")), 0, MaxPastEpochs+1, "epochs")
	for k := 0; k < ne && r.err == nil; k++ {
		e := &epochState{epoch: r.u64("epoch"), head: r.fixed32("head"), auth: r.fixed32("auth")}
		n := r.boundedLen(int(r.u16("members")), 1, MaxMembers, "epoch members")
		e.self = int(r.u16("self"))
		e.sendCK = r.fixed32("send ck")
		e.sendNext = r.u32("send next")
		if r.err != nil {
			break
		}
		if e.self >= n {
			return nil, fmt.Errorf("%w: self index", ErrMalformed)
		}
		if k > 0 && e.epoch <= g.epochs[k-1].epoch {
			return nil, fmt.Errorf("%w: epochs out of order", ErrMalformed)
		}
		e.keys = make([][32]byte, 0, min(n, len(r.b)/71))
		e.names = make([]string, 0, cap(e.keys))
		e.recv = make([]chain, 0, cap(e.keys))
		for i := 0; i < n && r.err == nil; i++ {
			e.keys = append(e.keys, r.fixed32("key"))
			e.names = append(e.names, r.str8(1, MaxNameLen, "name"))
			c := chain{ck: r.fixed32("ck"), next: r.u32("next")}
			ns := r.boundedLen(int(r.u16("skipped")), 0, MaxSkip, "skipped")
			if r.err != nil {
				break
			}
			c.skipped = make([]skippedKey, 0, min(ns, len(r.b)/60))
			for j := 0; j < ns && r.err == nil; j++ {
				s := skippedKey{index: r.u32("skip index")}
				copy(s.key[:], r.take(len(s.key), "skip key"))
				if r.err == nil && (s.index >= c.next || (j > 0 && s.index <= c.skipped[j-1].index)) {
					return nil, fmt.Errorf("%w: skipped keys order", ErrMalformed)
				}
				c.skipped = append(c.skipped, s)
			}
			e.recv = append(e.recv, c)
		}
		g.epochs = append(g.epochs, e)
	}
	if err := r.done("group state"); err != nil {
		return nil, err
	}
	if g.roster == nil && (len(g.epochs) > 0 || g.member) {
		return nil, fmt.Errorf("%w: epochs without roster", ErrMalformed)
	}
	if g.member && (g.roster == nil || len(g.epochs) == 0 || g.roster.Index(g.self) < 0 ||
		g.epochs[len(g.epochs)-1].epoch != g.roster.Epoch) {
		return nil, fmt.Errorf("%w: inconsistent membership", ErrMalformed)
	}
	return g, nil
}
