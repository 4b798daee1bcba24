package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// ErrMalformed is wrapped by every error Decode returns for bad input.
var ErrMalformed = errors.New("wire: malformed frame")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = decOptions(MaxDeliverEntries).DecMode()
	if err != nil {
		panic(err)
	}
}

// decOptions are the bounded decoding rules of the protocol, with arrays of
// at most maxArray elements.
func decOptions(maxArray int) cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:             cbor.DupMapKeyEnforcedAPF,
		IndefLength:           cbor.IndefLengthForbidden,
		TagsMd:                cbor.TagsForbidden,
		MaxNestedLevels:       4,
		MaxArrayElements:      maxArray,
		MaxMapPairs:           16,
		UTF8:                  cbor.UTF8RejectInvalid,
		IntDec:                cbor.IntDecConvertNone,
		DefaultByteStringType: nil,
	}
}

// Encode returns the bytes of f: its type byte followed by its CBOR body.
// It refuses to encode a frame that Decode would reject.
func Encode(f Frame) ([]byte, error) {
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", f.Type(), err)
	}
	if d, ok := f.(*Deliver); ok {
		return encodeDeliver(d), nil
	}
	body, err := encMode.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s: %w", f.Type(), err)
	}
	out := make([]byte, 1+len(body))
	out[0] = byte(f.Type())
	copy(out[1:], body)
	return out, nil
}

// Decode parses one frame. The returned frame owns its byte slices: it does
// not alias b. (A deliver frame's envelopes may share one allocation, each
// capped at its own length.)
func Decode(b []byte) (Frame, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if len(b) > MaxServerFrame {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxServerFrame)
	}
	var f Frame
	switch Type(b[0]) {
	case TypeHello:
		f = new(Hello)
	case TypeAuth:
		f = new(Auth)
	case TypeWelcome:
		f = new(Welcome)
	case TypeSubscribe:
		f = new(Subscribe)
	case TypeSubscribed:
		f = new(Subscribed)
	case TypeUnsubscribe:
		f = new(Unsubscribe)
	case TypeRetained:
		f = new(Retained)
	case TypePublish:
		f = new(Publish)
	case TypeAck:
		f = new(Ack)
	case TypeDeliver:
		d, err := decodeDeliver(b[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, TypeDeliver, err)
		}
		return d, nil
	case TypeError:
		f = new(Error)
	case TypePresenceReq:
		f = new(PresenceReq)
	case TypePresence:
		f = new(Presence)
	default:
		return nil, fmt.Errorf("%w: unknown type 0x%02x", ErrMalformed, b[0])
	}
	if err := decMode.Unmarshal(b[1:], f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, f.Type(), err)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, f.Type(), err)
	}
	return f, nil
}

// ValidOp reports whether name is a valid operation name: 1 to MaxOpLen
// bytes of ASCII letters, digits, '.', '_' and '-', not starting with '.'.
func ValidOp(name string) bool {
	if len(name) == 0 || len(name) > MaxOpLen || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkOp(op string) error {
	if !ValidOp(op) {
		return fmt.Errorf("invalid operation name %q", truncate(op))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

func (h *Hello) validate() error {
	if len(h.Versions) == 0 || len(h.Versions) > 16 {
		return errors.New("hello: 1 to 16 versions")
	}
	if len(h.Challenge) != ChallengeLen {
		return fmt.Errorf("hello: challenge must be %d bytes", ChallengeLen)
	}
	if len(h.Node) > 128 {
		return errors.New("hello: node id too long")
	}
	return nil
}

func (a *Auth) validate() error {
	if a.Version == 0 {
		return errors.New("auth: version missing")
	}
	if len(a.Identity) > MaxTokenLen {
		return errors.New("auth: identity too long")
	}
	if len(a.Signature) > 256 {
		return errors.New("auth: signature too long")
	}
	if len(a.Client) > 128 {
		return errors.New("auth: client name too long")
	}
	if a.Binding > BindingTLSExporter {
		return fmt.Errorf("auth: unknown channel binding %d", a.Binding)
	}
	return nil
}

func (w *Welcome) validate() error {
	if w.Version == 0 {
		return errors.New("welcome: version missing")
	}
	if len(w.Node) > 128 || len(w.Session) > 128 {
		return errors.New("welcome: field too long")
	}
	return nil
}

func (s *Subscribe) validate() error {
	if s.From == 0 {
		return errors.New("subscribe: from must be at least 1")
	}
	return checkOp(s.Op)
}

func (s *Subscribed) validate() error {
	if s.From == 0 {
		return errors.New("subscribed: from must be at least 1")
	}
	if (len(s.Prev) != 0 || len(s.LogAnchor) != 0) && (len(s.Prev) != HashLen || len(s.LogAnchor) != HashLen || s.From < 2) {
		return fmt.Errorf("subscribed: prev and log anchor go together, %d bytes each, with from above 1", HashLen)
	}
	if s.Retained > 0 && (len(s.Prev) == 0 || s.Retained >= s.From) {
		return errors.New("subscribed: retained commits only with anchors, fewer than from")
	}
	return checkOp(s.Op)
}

func (u *Unsubscribe) validate() error { return checkOp(u.Op) }

func (p *Publish) validate() error {
	if err := checkOp(p.Op); err != nil {
		return err
	}
	if len(p.MsgID) != MsgIDLen {
		return fmt.Errorf("publish: message id must be %d bytes", MsgIDLen)
	}
	if p.Class > MaxClass {
		return fmt.Errorf("publish: unknown class %d", p.Class)
	}
	if p.Kind > MaxKind {
		return fmt.Errorf("publish: unknown kind %d", p.Kind)
	}
	if len(p.Envelope) == 0 {
		return errors.New("publish: empty envelope")
	}
	if limit := maxEntry(p.Kind); len(p.Envelope) > limit {
		return fmt.Errorf("publish: %s of %d bytes exceeds %d", p.Kind, len(p.Envelope), limit)
	}
	return nil
}

// maxEntry is the size limit of an entry of kind k.
func maxEntry(k Kind) int {
	if k == KindCommit {
		return MaxCommit
	}
	return MaxEnvelope
}

func (a *Ack) validate() error {
	if a.Seq == 0 {
		return errors.New("ack: sequence missing")
	}
	return checkOp(a.Op)
}

func (d *Deliver) validate() error {
	if err := checkOp(d.Op); err != nil {
		return err
	}
	if d.Seq == 0 {
		return errors.New("deliver: sequence missing")
	}
	if len(d.Prev) != HashLen {
		return fmt.Errorf("deliver: prev must be %d bytes", HashLen)
	}
	if len(d.Envelopes) == 0 || len(d.Envelopes) > MaxDeliverEntries {
		return fmt.Errorf("deliver: 1 to %d envelopes", MaxDeliverEntries)
	}
	if d.Seq+uint64(len(d.Envelopes)) < d.Seq {
		return errors.New("deliver: sequence overflows")
	}
	if len(d.Kinds) != 0 && len(d.Kinds) != len(d.Envelopes) {
		return errors.New("deliver: one kind per envelope")
	}
	for i, e := range d.Envelopes {
		k := d.KindOf(i)
		if k > MaxKind {
			return fmt.Errorf("deliver: unknown kind %d", k)
		}
		if len(e) == 0 || len(e) > maxEntry(k) {
			return errors.New("deliver: envelope size out of range")
		}
	}
	return nil
}

func (e *Error) validate() error {
	if e.Code == 0 {
		return errors.New("error: code missing")
	}
	if len(e.Message) > MaxMessageLen {
		return errors.New("error: message too long")
	}
	if !utf8.ValidString(e.Message) {
		return errors.New("error: message not UTF-8")
	}
	if e.Op != "" {
		return checkOp(e.Op)
	}
	return nil
}
