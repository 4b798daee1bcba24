package session

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// PayloadVersion is the version of the payload structure inside envelopes.
const PayloadVersion = 1

// Payload types. Unknown types are kept and shown as unsupported.
const (
	TypeChat = "chat"
)

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

// EncodePayload encodes p.
func EncodePayload(p Payload) ([]byte, error) {
	if len(p.Text) > MaxText {
		return nil, fmt.Errorf("session: text of %d bytes exceeds %d", len(p.Text), MaxText)
	}
	if !utf8.ValidString(p.Text) {
		return nil, errors.New("session: text is not valid UTF-8")
	}
	return payloadEnc.Marshal(p)
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
	if p.V != PayloadVersion {
		return Payload{}, fmt.Errorf("%w: version %d", ErrBadPayload, p.V)
	}
	if p.Type == "" || len(p.Type) > 32 || len(p.Text) > MaxText {
		return Payload{}, fmt.Errorf("%w: field out of bounds", ErrBadPayload)
	}
	return p, nil
}
