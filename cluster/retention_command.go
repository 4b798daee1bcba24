package cluster

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Retention commands (all integers unsigned varints):
//
//	commandRetention: kind(1) oplen op max_age_ms max_count flags(1)
//	  flags bit 0: clear the operation's policy (back to the default)
//	commandCompact:   kind(1) oplen op before
//
// A policy is replicated so that every node reports the same one; the
// leader alone turns policies into compact commands, each naming the exact
// sequence to compact before, so applying one needs no clock.
const (
	commandRetention byte = 4
	commandCompact   byte = 5
)

// maxCompactPerCommand bounds the entries one compact command removes, so
// one bbolt transaction stays short; the leader proposes as many as needed.
const maxCompactPerCommand = 8192

// retentionCmd sets or clears an operation's retention policy.
type retentionCmd struct {
	op     string
	policy Retention
	clear  bool
}

// compactCmd removes an operation's entries before a sequence.
type compactCmd struct {
	op     string
	before uint64
}

func encodeRetention(op string, p Retention, clear bool) []byte {
	b := []byte{commandRetention}
	b = binary.AppendUvarint(b, uint64(len(op)))
	b = append(b, op...)
	b = binary.AppendUvarint(b, uint64(p.MaxAge.Milliseconds()))
	b = binary.AppendUvarint(b, p.MaxCount)
	var flags byte
	if clear {
		flags = 1
	}
	return append(b, flags)
}

func encodeCompact(op string, before uint64) []byte {
	b := []byte{commandCompact}
	b = binary.AppendUvarint(b, uint64(len(op)))
	b = append(b, op...)
	return binary.AppendUvarint(b, before)
}

// maxAgeMS bounds a policy's age (about 290 years), so that durations never
// overflow.
const maxAgeMS = 1 << 53

// decodeControl parses a commandRetention or commandCompact entry.
func decodeControl(data []byte) (command, error) {
	c := command{kind: data[0]}
	r := reader{b: data[1:]}
	opLen := r.uvarint()
	if r.err != nil || opLen == 0 || opLen > MaxOpLen {
		return c, fmt.Errorf("%w: bad operation length", ErrBadCommand)
	}
	op := string(r.bytes(int(opLen)))
	switch c.kind {
	case commandRetention:
		age, count := r.uvarint(), r.uvarint()
		flags := r.bytes(1)
		if r.err != nil || age > maxAgeMS || flags[0] > 1 {
			return c, fmt.Errorf("%w: bad retention policy", ErrBadCommand)
		}
		c.retention = &retentionCmd{op: op, policy: Retention{MaxAge: time.Duration(age) * time.Millisecond, MaxCount: count}, clear: flags[0] == 1}
	case commandCompact:
		before := r.uvarint()
		if r.err != nil || before < 2 {
			return c, fmt.Errorf("%w: bad compact command", ErrBadCommand)
		}
		c.compact = &compactCmd{op: op, before: before}
	}
	if len(r.b) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(r.b))
	}
	return c, nil
}
