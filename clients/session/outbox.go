package session

import (
	"bytes"
	"errors"
	"fmt"

	"liaison/clients"
	"liaison/relay/wire"
)

// The outbox holds messages typed but not yet sealed: a blob of its own
// (outbox_store.go), with its own short-lived lock, so that Queue never waits
// for the operation's lock (which Sync holds while it waits for the relay).
// Format: magic "LOBX" ‖ version 1 ‖ nonce (24) ‖ XChaCha20-Poly1305(key,
// nonce, CBOR(outboxFile), AD) with the state file's key and AD = "LOBX" ‖
// version ‖ 0x00 ‖ str8(op) ‖ own Ed25519 public key.
//
// Sync moves queued messages into the state's pending list (sealed, under
// the msgid fixed when they were queued) before it publishes pending
// messages: the state is saved first, then the outbox is rewritten without
// them, and a queued msgid that is already pending is only removed. So a
// queued message is published only once it has left the outbox, and is
// never sealed twice, whatever crashes in between; the relay's dedupe by
// msgid makes its re-sends after an unknown outcome harmless.
const (
	outboxMagic   = "LOBX"
	maxOutboxFile = 64 << 20
	// MaxOutbox bounds the messages an outbox holds.
	MaxOutbox = 1000
)

// ErrOutboxFull is returned by Queue when the outbox holds MaxOutbox messages.
var ErrOutboxFull = errors.New("session: outbox full")

// outboxMsg is one queued message.
type outboxMsg struct {
	MsgID  []byte `cbor:"1,keyasint"`
	Class  uint8  `cbor:"2,keyasint,omitempty"`
	Type   string `cbor:"3,keyasint"`
	Text   string `cbor:"4,keyasint,omitempty"`
	TimeMS int64  `cbor:"5,keyasint"`
}

type outboxFile struct {
	V    int         `cbor:"1,keyasint"`
	Op   string      `cbor:"2,keyasint"`
	Msgs []outboxMsg `cbor:"3,keyasint,omitempty"`
}

// Queued is an own message that is not yet in the operation's log.
type Queued struct {
	// MsgID is fixed when the message is queued; every publish of it
	// carries this id, so the relay stores it once.
	MsgID  clients.MsgID
	Class  wire.Class
	Text   string
	TimeMS int64
	// Sealed is true once it was encrypted and handed to the relay at
	// least once (its outcome still unknown); false while only queued.
	Sealed bool
}

// Queue saves text as a chat message to op in the outbox, under a msgid
// fixed now, and returns it. It needs no relay and never waits for the
// relay: the next Sync (or Send) of op seals and publishes it, exactly once.
// The outbox survives the process.
func (s *Session) Queue(op, text string, class wire.Class) (Queued, error) {
	if !wire.ValidOp(op) {
		return Queued{}, fmt.Errorf("%w: %q", clients.ErrInvalidOp, op)
	}
	if class > wire.ClassFlash {
		return Queued{}, fmt.Errorf("session: invalid priority class %d", class)
	}
	if _, err := EncodePayload(Payload{V: PayloadVersion, Type: TypeChat, Text: text}); err != nil {
		return Queued{}, err
	}
	q := Queued{MsgID: clients.NewMsgID(), Class: class, Text: text, TimeMS: s.nowMS()}
	err := s.withOutbox(op, func(ob *outboxFile) (bool, error) {
		if len(ob.Msgs) >= MaxOutbox {
			return false, fmt.Errorf("%w: %d messages wait to be sent to %s", ErrOutboxFull, len(ob.Msgs), op)
		}
		ob.Msgs = append(ob.Msgs, outboxMsg{MsgID: q.MsgID[:], Class: uint8(class), Type: TypeChat, Text: text, TimeMS: q.TimeMS})
		return true, nil
	})
	if err != nil {
		return Queued{}, err
	}
	return q, nil
}

// Outbox returns op's own messages not yet seen in the log, oldest first:
// those handed to the relay with an unknown outcome (Sealed), then those
// only queued. It waits for op's lock, which a running Sync holds.
func (s *Session) Outbox(op string) ([]Queued, error) {
	var out []Queued
	_, err := s.lockedOp(op, false, func(oc *opCtx) error {
		for _, p := range oc.st.Pending {
			out = append(out, Queued{MsgID: clients.MsgID(p.MsgID), Class: wire.Class(p.Class), Text: p.Text, TimeMS: p.TimeMS, Sealed: true})
		}
		return s.withOutbox(op, func(ob *outboxFile) (bool, error) {
			for _, m := range ob.Msgs {
				if !pendingHas(oc.st, m.MsgID) {
					out = append(out, Queued{MsgID: clients.MsgID(m.MsgID), Class: wire.Class(m.Class), Text: m.Text, TimeMS: m.TimeMS})
				}
			}
			return false, nil
		})
	})
	return out, err
}

func pendingHas(st *opState, id []byte) bool {
	for _, p := range st.Pending {
		if bytes.Equal(p.MsgID, id) {
			return true
		}
	}
	return false
}

// drainOutbox seals op's queued messages into the pending list (without
// publishing them), saves the state, then removes them from the outbox.
// It runs under op's lock, after a catch-up, before flushPending.
func (s *Session) drainOutbox(oc *opCtx) error {
	var msgs []outboxMsg
	if err := s.withOutbox(oc.st.Op, func(ob *outboxFile) (bool, error) {
		msgs = ob.Msgs
		return false, nil
	}); err != nil || len(msgs) == 0 {
		return err
	}
	done := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if !pendingHas(oc.st, m.MsgID) {
			if err := s.seal(oc, &pendingMsg{MsgID: m.MsgID, Class: m.Class, Type: m.Type, Text: m.Text, TimeMS: m.TimeMS}); err != nil {
				if !errors.Is(err, ErrNotMember) {
					return err
				}
				s.warn(oc.st.Op, fmt.Sprintf("your message %q was not sent: %v", abbreviate(m.Text), err))
			}
		}
		done[string(m.MsgID)] = true
	}
	if err := s.save(oc); err != nil {
		return err
	}
	return s.withOutbox(oc.st.Op, func(ob *outboxFile) (bool, error) {
		kept := ob.Msgs[:0]
		for _, m := range ob.Msgs {
			if !done[string(m.MsgID)] {
				kept = append(kept, m)
			}
		}
		ob.Msgs = kept
		return true, nil
	})
}

// withOutbox runs f on op's outbox under its lock and writes it back if f
// says so. The lock is held only for the file's read and write.
func (s *Session) withOutbox(op string, f func(ob *outboxFile) (write bool, err error)) error {
	unlock, err := s.lockOutbox(op)
	if err != nil {
		return err
	}
	defer unlock()
	ob, err := s.readOutbox(op)
	if err != nil {
		return err
	}
	write, err := f(ob)
	if err != nil || !write {
		return err
	}
	return s.writeOutbox(ob)
}

// readOutbox decrypts op's outbox; an empty one if there is no file.
func (s *Session) readOutbox(op string) (*outboxFile, error) {
	b, err := s.loadOutbox(op)
	if errors.Is(err, ErrNoState) {
		return &outboxFile{V: 1, Op: op}, nil
	}
	if err != nil {
		return nil, err
	}
	pt, err := s.openBlob(outboxBlob, op, s.outboxName(op), b)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	ob := new(outboxFile)
	if err := stateDec.Unmarshal(pt, ob); err != nil {
		return nil, fmt.Errorf("session: %s: %w", s.outboxName(op), err)
	}
	if ob.V != 1 || ob.Op != op || len(ob.Msgs) > MaxOutbox {
		return nil, fmt.Errorf("session: %s: outbox of another operation, or too long", s.outboxName(op))
	}
	for _, m := range ob.Msgs {
		if len(m.MsgID) != len(clients.MsgID{}) {
			return nil, fmt.Errorf("session: %s: bad message id", s.outboxName(op))
		}
	}
	return ob, nil
}

// writeOutbox encrypts ob and replaces the file atomically.
func (s *Session) writeOutbox(ob *outboxFile) error {
	pt, err := stateEnc.Marshal(ob)
	if err != nil {
		return err
	}
	out, err := s.sealBlob(outboxBlob, ob.Op, pt)
	clear(pt)
	if err != nil {
		return err
	}
	return s.saveOutbox(ob.Op, out)
}
