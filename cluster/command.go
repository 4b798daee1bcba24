package cluster

import (
	"encoding/binary"
	"fmt"

	"liaison/crypto"
)

// Raft entry layout (all integers unsigned varints unless noted):
//
//	kind    1 byte   commandPublish
//	time    uvarint  leader's clock, Unix milliseconds
//	count   uvarint  1..MaxBatchCount
//	count times:
//	  oplen uvarint  1..MaxOpLen, then op bytes
//	  msgid 16 bytes
//	  class 1 byte
//	  kind  1 byte   KindMessage, KindCommit or KindTask
//	  envlen uvarint 1..MaxEnvelope (MaxCommit for a commit), then the bytes
//
// The time is stamped once by the leader so that every node applies the same
// value: the FSM never reads its own clock.
const commandPublish byte = 1

// Audited admin commands (kinds 6-8) share one layout:
//
//	kind    1 byte   commandAdminAction, commandAdminBootstrap or commandNodeJoin
//	time    uvarint  leader's clock, Unix milliseconds
//	body    the rest: the audit entry body of the matching crypto.AuditKind
//
// The FSM checks the body (an admin request's signature, its signer against
// the admin list, its time window and nonce), applies what it changes (the
// admin list) and appends the audit entry. Kind 9 is reserved.
const (
	commandAdminAction    byte = 6 // body: a signed crypto.AdminRequest
	commandAdminBootstrap byte = 7 // body: crypto.AdminBootstrapBody
	commandNodeJoin       byte = 8 // body: crypto.NodeJoinBody
)

type command struct {
	kind   byte
	timeMS int64
	pubs   []Publish
	body   []byte // kinds 6-8
	// retention and compact are set for commandRetention and
	// commandCompact (retention_command.go).
	retention *retentionCmd
	compact   *compactCmd
}

// auditKind maps an admin command kind to the audit entry it appends.
func auditKind(kind byte) (crypto.AuditKind, bool) {
	switch kind {
	case commandAdminAction:
		return crypto.AuditAdminAction, true
	case commandAdminBootstrap:
		return crypto.AuditAdminBootstrap, true
	case commandNodeJoin:
		return crypto.AuditNodeJoin, true
	}
	return 0, false
}

func encodeAdminCommand(kind byte, timeMS int64, body []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(body))
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(timeMS))
	return append(b, body...)
}

func encodedSize(p *Publish) int {
	return 2*binary.MaxVarintLen64 + len(p.Op) + MsgIDLen + 2 + len(p.Envelope)
}

func encodePublishes(timeMS int64, pubs []*pending) []byte {
	n := 1 + 2*binary.MaxVarintLen64
	for _, p := range pubs {
		n += encodedSize(&p.pub)
	}
	b := make([]byte, 0, n)
	b = append(b, commandPublish)
	b = binary.AppendUvarint(b, uint64(timeMS))
	b = binary.AppendUvarint(b, uint64(len(pubs)))
	for _, p := range pubs {
		b = binary.AppendUvarint(b, uint64(len(p.pub.Op)))
		b = append(b, p.pub.Op...)
		b = append(b, p.pub.MsgID[:]...)
		b = append(b, p.pub.Class, p.pub.Kind)
		b = binary.AppendUvarint(b, uint64(len(p.pub.Envelope)))
		b = append(b, p.pub.Envelope...)
	}
	return b
}

// decodeCommand parses a Raft entry. Envelope slices alias data.
func decodeCommand(data []byte) (command, error) {
	var c command
	if len(data) < 1 {
		return c, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	c.kind = data[0]
	if _, ok := auditKind(c.kind); ok {
		r := reader{b: data[1:]}
		t := r.uvarint()
		if r.err != nil || t > 1<<62 || len(r.b) == 0 || len(r.b) > crypto.MaxAuditBody {
			return c, fmt.Errorf("%w: bad admin command", ErrBadCommand)
		}
		c.timeMS, c.body = int64(t), r.b
		return c, nil
	}
	switch c.kind {
	case commandPublish:
	case commandRetention, commandCompact:
		return decodeControl(data)
	default:
		return c, fmt.Errorf("%w: unknown kind %d", ErrBadCommand, c.kind)
	}
	r := reader{b: data[1:]}
	t := r.uvarint()
	count := r.uvarint()
	if r.err != nil || t > 1<<62 || count == 0 || count > MaxBatchCount {
		return c, fmt.Errorf("%w: bad header", ErrBadCommand)
	}
	c.timeMS = int64(t)
	c.pubs = make([]Publish, 0, count)
	for i := uint64(0); i < count; i++ {
		var p Publish
		opLen := r.uvarint()
		if r.err != nil || opLen == 0 || opLen > MaxOpLen {
			return c, fmt.Errorf("%w: publish %d: bad operation length", ErrBadCommand, i)
		}
		p.Op = string(r.bytes(int(opLen)))
		copy(p.MsgID[:], r.bytes(MsgIDLen))
		ck := r.bytes(2)
		envLen := r.uvarint()
		if r.err != nil || envLen == 0 || envLen > uint64(maxEntry(ck[1])) {
			return c, fmt.Errorf("%w: publish %d: bad kind or envelope length", ErrBadCommand, i)
		}
		p.Envelope = r.bytes(int(envLen))
		if r.err != nil {
			return c, fmt.Errorf("%w: publish %d: truncated", ErrBadCommand, i)
		}
		p.Class, p.Kind = ck[0], ck[1]
		c.pubs = append(c.pubs, p)
	}
	if len(r.b) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(r.b))
	}
	return c, nil
}

// maxEntry is the size limit of an entry of kind k; 0 for an unknown kind.
func maxEntry(k uint8) int {
	switch k {
	case KindMessage, KindTask:
		return MaxEnvelope
	case KindCommit:
		return MaxCommit
	}
	return 0
}

// reader is a bounds-checked cursor; after the first error every call
// returns zero values and err stays set.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrBadCommand
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = ErrBadCommand
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}
