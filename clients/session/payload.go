package session

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"liaison/relay/wire"
)

// PayloadVersion is the version of the payload structure inside envelopes.
const PayloadVersion = 1

// Payload types. Unknown types are kept and shown as unsupported.
const (
	// TypeChat is a chat message: Text.
	TypeChat = "chat"
	// TypeTask is a task (published as a wire.KindTask entry by a centre
	// or admin member): TaskID, Priority, optional DueMS, Text.
	TypeTask = "task"
	// TypeAck is an acknowledgement of a task (a wire.KindMessage entry):
	// TaskID, State, optional note in Text.
	TypeAck = "ack"
)

// TaskIDLen is the length of a task id.
const TaskIDLen = 16

// MaxText bounds a payload's text in bytes. With the CBOR framing the
// plaintext stays under 128 KiB, so the padded envelope fits the relay's
// 256 KiB limit.
const MaxText = 100_000

// maxPayload bounds an encoded payload accepted by DecodePayload.
const maxPayload = MaxText + 1024

// Payload is the plaintext inside an envelope: a small versioned CBOR map
// with integer keys. Decoders ignore keys they do not know, so later
// versions can add fields (task priority, acknowledged message, ...).
type Payload struct {
	V      uint   `cbor:"1,keyasint"`
	Type   string `cbor:"2,keyasint"`
	TimeMS int64  `cbor:"3,keyasint"`
	Text   string `cbor:"4,keyasint,omitempty"`
	// TaskID names the task (TypeTask) or the task acknowledged (TypeAck):
	// TaskIDLen random bytes chosen by the task's sender.
	TaskID []byte `cbor:"5,keyasint,omitempty"`
	// Priority of a task: a wire.Class value (0 routine, 1 immediate,
	// 2 flash), the same as the entry's class on the wire.
	Priority uint8 `cbor:"6,keyasint,omitempty"`
	// DueMS is a task's due time, Unix milliseconds; 0 means none.
	DueMS int64 `cbor:"7,keyasint,omitempty"`
	// State of an acknowledgement (AckState: 1 received, 2 understood,
	// 3 done, 4 unable).
	State uint8 `cbor:"8,keyasint,omitempty"`
}

var (
	payloadEnc cbor.EncMode
	payloadDec cbor.DecMode
)

func init() {
	var err error
	if payloadEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	payloadDec, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 256,
		MaxMapPairs:      32,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrBadPayload is wrapped by DecodePayload errors.
var ErrBadPayload = errors.New("session: malformed message payload")

// EncodePayload encodes p. It refuses what DecodePayload would reject.
func EncodePayload(p Payload) ([]byte, error) {
	if len(p.Text) > MaxText {
		return nil, fmt.Errorf("session: text of %d bytes exceeds %d", len(p.Text), MaxText)
	}
	if !utf8.ValidString(p.Text) {
		return nil, errors.New("session: text is not valid UTF-8")
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return payloadEnc.Marshal(p)
}

// check applies the per-type rules: chat carries no task fields, a task an
// id, a priority and a non-negative due time, an ack an id and a state.
func (p *Payload) check() error {
	if p.V != PayloadVersion {
		return fmt.Errorf("version %d", p.V)
	}
	if p.Type == "" || len(p.Type) > 32 || len(p.TaskID) > TaskIDLen {
		return errors.New("field out of bounds")
	}
	switch p.Type {
	case TypeChat:
		if len(p.TaskID) != 0 || p.Priority != 0 || p.DueMS != 0 || p.State != 0 {
			return errors.New("chat with task fields")
		}
	case TypeTask:
		if len(p.TaskID) != TaskIDLen || p.Priority > uint8(wire.MaxClass) || p.DueMS < 0 || p.State != 0 {
			return errors.New("task fields out of bounds")
		}
	case TypeAck:
		if len(p.TaskID) != TaskIDLen || !AckState(p.State).Valid() || p.Priority != 0 || p.DueMS != 0 {
			return errors.New("acknowledgement fields out of bounds")
		}
	}
	return nil
}

// DecodePayload parses a payload with bounded CBOR decoding.
func DecodePayload(b []byte) (Payload, error) {
	var p Payload
	if len(b) > maxPayload {
		return p, fmt.Errorf("%w: %d bytes", ErrBadPayload, len(b))
	}
	if err := payloadDec.Unmarshal(b, &p); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if len(p.Text) > MaxText {
		return Payload{}, fmt.Errorf("%w: field out of bounds", ErrBadPayload)
	}
	if len(p.TaskID) == 0 {
		p.TaskID = nil
	}
	if err := p.check(); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	return p, nil
}
