package wire

import "fmt"

// Version is the protocol version this package speaks.
const Version = 1

// Limits that every implementation enforces. They are part of the protocol.
const (
	// MaxEnvelope is the largest message envelope a publish may carry.
	MaxEnvelope = 256 << 10
	// MaxCommit is the largest roster commit a publish may carry (about
	// 3,000 members: each commit seals the epoch secret to every member).
	MaxCommit = 4 << 20
	// MaxClientFrame is the largest frame a client may send.
	MaxClientFrame = MaxCommit + 1024
	// MaxServerFrame is the largest frame a server sends; a deliver frame
	// carrying several entries stays under it, and one commit always fits.
	MaxServerFrame = MaxCommit + 4096
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
	TypeRetained    Type = 0x13 // server -> client
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
	case TypePresenceReq:
		return "presence_req"
	case TypePresence:
		return "presence"
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// Binding names the channel binding an auth signature covers.
type Binding uint8

// Channel bindings.
const (
	// BindingNone: the signature is not bound to a TLS channel (plain
	// WebSocket, or a client such as a browser that cannot read the TLS
	// exporter).
	BindingNone Binding = 0
	// BindingTLSExporter: the signature covers the connection's RFC 9266
	// tls-exporter value (label "EXPORTER-Channel-Binding", empty context,
	// 32 bytes).
	BindingTLSExporter Binding = 1
)

// Class is the coarse priority the relay may see. Relays deliver higher
// classes first; the real priority and content stay inside the envelope.
type Class uint8

// Priority classes.
const (
	ClassRoutine   Class = 0
	ClassImmediate Class = 1
	ClassFlash     Class = 2
)

// Kind says what a log entry holds. The relay stores the kind beside the
// entry; it is not part of the entry's bytes or of its chain hash.
type Kind uint8

// Entry kinds.
const (
	// KindMessage: an end-to-end encrypted envelope.
	KindMessage Kind = 0
	// KindCommit: a signed roster commit (genesis, membership change or key
	// update). The relay checks that it names the operation's current
	// roster head and is signed with the authority the roster requires.
	KindCommit Kind = 1
	// KindTask: an end-to-end encrypted envelope holding tasking. The relay
	// stores it like a message; only centre and admin members may publish it.
	KindTask Kind = 2
)

// MaxKind is the highest defined kind.
const MaxKind = KindTask

// MaxClass is the highest defined class.
const MaxClass = ClassFlash

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindCommit:
		return "commit"
	case KindTask:
		return "task"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

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
