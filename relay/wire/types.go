package wire

import "fmt"

// Version is the protocol version this package speaks.
const Version = 1

// Limits that every implementation enforces. They are part of the protocol.
const (
	// MaxEnvelope is the largest envelope a publish may carry.
	MaxEnvelope = 256 << 10
	// MaxClientFrame is the largest frame a client may send.
	MaxClientFrame = MaxEnvelope + 1024
	// MaxServerFrame is the largest frame a server sends; a deliver frame
	// carrying several envelopes stays under it.
	MaxServerFrame = 1 << 20
	// MaxOpLen is the longest operation name.
	MaxOpLen = 64
	// MsgIDLen is the length of a client message id.
	MsgIDLen = 16
	// ChallengeLen is the length of a server challenge.
	ChallengeLen = 32
	// HashLen is the length of a chain hash (SHA-256).
	HashLen = 32
	// MaxDeliverEntries bounds the envelopes in one deliver frame.
	MaxDeliverEntries = 1024
	// MaxMessageLen bounds the human-readable text of an error frame.
	MaxMessageLen = 1024
	// MaxTokenLen bounds an identity token carried in an auth frame.
	MaxTokenLen = 8192
)

// Type is the first byte of every frame.
type Type byte

// Frame types. Values are stable: they are part of the protocol.
const (
	TypeHello       Type = 0x01 // server -> client
	TypeAuth        Type = 0x02 // client -> server
	TypeWelcome     Type = 0x03 // server -> client
	TypeSubscribe   Type = 0x10 // client -> server
	TypeSubscribed  Type = 0x11 // server -> client
	TypeUnsubscribe Type = 0x12 // client -> server
	TypePublish     Type = 0x20 // client -> server
	TypeAck         Type = 0x21 // server -> client
	TypeDeliver     Type = 0x30 // server -> client
	TypeError       Type = 0x7f // server -> client
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeAuth:
		return "auth"
	case TypeWelcome:
		return "welcome"
	case TypeSubscribe:
		return "subscribe"
	case TypeSubscribed:
		return "subscribed"
	case TypeUnsubscribe:
		return "unsubscribe"
	case TypePublish:
		return "publish"
	case TypeAck:
		return "ack"
	case TypeDeliver:
		return "deliver"
	case TypeError:
		return "error"
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// Class is the coarse priority the relay may see. Relays deliver higher
// classes first; the real priority and content stay inside the envelope.
type Class uint8

// Priority classes.
const (
	ClassRoutine   Class = 0
	ClassImmediate Class = 1
	ClassFlash     Class = 2
)

// MaxClass is the highest defined class.
const MaxClass = ClassFlash

func (c Class) String() string {
	switch c {
	case ClassRoutine:
		return "routine"
	case ClassImmediate:
		return "immediate"
	case ClassFlash:
		return "flash"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}
