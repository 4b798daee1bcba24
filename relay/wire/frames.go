package wire

// Frame is implemented by every frame type.
type Frame interface {
	// Type returns the frame's type byte.
	Type() Type
	validate() error
}

// Hello is the first frame a server sends on a new connection.
type Hello struct {
	// Versions lists the protocol versions the server speaks.
	Versions []uint `cbor:"1,keyasint"`
	// Node is the id of the node the client is connected to.
	Node string `cbor:"2,keyasint"`
	// Challenge is a fresh random value the client signs to authenticate.
	Challenge []byte `cbor:"3,keyasint"`
	// Time is the server's clock in Unix milliseconds.
	Time int64 `cbor:"4,keyasint"`
}

// Auth is the client's answer to Hello: the version it chose, its identity
// token (crypto.Token, binary form) and its signature over the login
// (crypto.Login: the hello's challenge, node and time, and the TLS channel
// binding named by Binding).
type Auth struct {
	Version   uint   `cbor:"1,keyasint"`
	Identity  []byte `cbor:"2,keyasint,omitempty"`
	Signature []byte `cbor:"3,keyasint,omitempty"`
	// Client names the client software, for logs. Optional.
	Client string `cbor:"4,keyasint,omitempty"`
	// Binding says what channel binding the signature covers:
	// BindingNone (absent) or BindingTLSExporter.
	Binding Binding `cbor:"5,keyasint,omitempty"`
}

// Welcome accepts an Auth: the connection is ready for requests.
type Welcome struct {
	Version uint   `cbor:"1,keyasint"`
	Node    string `cbor:"2,keyasint"`
	// Session is a server-chosen id for this connection, for logs.
	Session string `cbor:"3,keyasint,omitempty"`
}

// Subscribe asks for an operation's entries from sequence From (1 is the
// first entry), then for live entries as they commit.
type Subscribe struct {
	Req  uint64 `cbor:"1,keyasint"`
	Op   string `cbor:"2,keyasint"`
	From uint64 `cbor:"3,keyasint"`
	// Retained asks, when From is below the oldest entry still held, for
	// a subscription from the oldest entry, preceded by the roster commits
	// kept below it (Retained frames, after Subscribed), instead of a
	// compacted error. See "Retention" in docs/protocol.md.
	Retained bool `cbor:"4,keyasint,omitempty"`
}

// Subscribed confirms a Subscribe. Head is the last sequence committed on
// this node when the subscription started; First is the oldest sequence the
// node still holds. Behind is true when the node cannot confirm it is
// current (it knows no leader, or has not yet applied entries it knows are
// committed): Head may then be older than the cluster's.
type Subscribed struct {
	Req    uint64 `cbor:"1,keyasint"`
	Op     string `cbor:"2,keyasint"`
	From   uint64 `cbor:"3,keyasint"`
	Head   uint64 `cbor:"4,keyasint"`
	First  uint64 `cbor:"5,keyasint"`
	Behind bool   `cbor:"6,keyasint,omitempty"`
	// Prev and LogAnchor are set when the subscription starts above the
	// requested From because earlier entries were removed by retention:
	// the relay chain hash and the crypto.LogChain hash of entry From-1.
	// The client continues its chains from them; they are the relay's
	// word, which later members' envelopes corroborate.
	Prev      []byte `cbor:"7,keyasint,omitempty"`
	LogAnchor []byte `cbor:"8,keyasint,omitempty"`
	// Retained is the number of Retained frames that follow (roster commits
	// kept between the requested From and this From).
	Retained uint64 `cbor:"9,keyasint,omitempty"`
}

// Unsubscribe ends a subscription. Deliver frames already queued may still
// arrive.
type Unsubscribe struct {
	Req uint64 `cbor:"1,keyasint"`
	Op  string `cbor:"2,keyasint"`
}

// Publish appends an envelope to an operation's log. MsgID is chosen by the
// client and makes the publish idempotent: re-sending the same MsgID to the
// same operation is answered with the original sequence.
type Publish struct {
	Req      uint64 `cbor:"1,keyasint"`
	Op       string `cbor:"2,keyasint"`
	MsgID    []byte `cbor:"3,keyasint"`
	Class    Class  `cbor:"4,keyasint,omitempty"`
	Envelope []byte `cbor:"5,keyasint"`
	// Kind is KindMessage (absent) or KindCommit.
	Kind Kind `cbor:"6,keyasint,omitempty"`
}

// Ack answers a Publish after the entry is committed by a majority of the
// cluster. Dup is true when the MsgID had been committed before.
type Ack struct {
	Req uint64 `cbor:"1,keyasint"`
	Op  string `cbor:"2,keyasint"`
	Seq uint64 `cbor:"3,keyasint"`
	Dup bool   `cbor:"4,keyasint,omitempty"`
}

// Deliver carries consecutive committed entries of one operation: Envelopes[i]
// has sequence Seq+i. Prev is the chain hash of entry Seq-1 (all zero for
// Seq 1); the receiver computes chain_n = SHA-256(chain_{n-1} || envelope_n)
// for each entry. Kinds, when present, holds one Kind byte per envelope;
// absent means every entry is a message.
type Deliver struct {
	Op        string   `cbor:"1,keyasint"`
	Seq       uint64   `cbor:"2,keyasint"`
	Prev      []byte   `cbor:"3,keyasint"`
	Envelopes [][]byte `cbor:"4,keyasint"`
	Kinds     []byte   `cbor:"5,keyasint,omitempty"`
}

// KindOf returns the kind of Envelopes[i].
func (d *Deliver) KindOf(i int) Kind {
	if len(d.Kinds) == 0 {
		return KindMessage
	}
	return Kind(d.Kinds[i])
}

// Error reports a failed request (Req != 0) or a connection-level problem
// (Req == 0). Code is stable; Message is for people.
type Error struct {
	Req     uint64 `cbor:"1,keyasint,omitempty"`
	Code    Code   `cbor:"2,keyasint"`
	Message string `cbor:"3,keyasint,omitempty"`
	Op      string `cbor:"4,keyasint,omitempty"`
	// Seq carries a sequence where the code needs one: for CodeCompacted,
	// the oldest sequence still held.
	Seq uint64 `cbor:"5,keyasint,omitempty"`
}

// Type implements Frame.
func (*Hello) Type() Type { return TypeHello }

// Type implements Frame.
func (*Auth) Type() Type { return TypeAuth }

// Type implements Frame.
func (*Welcome) Type() Type { return TypeWelcome }

// Type implements Frame.
func (*Subscribe) Type() Type { return TypeSubscribe }

// Type implements Frame.
func (*Subscribed) Type() Type { return TypeSubscribed }

// Type implements Frame.
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }

// Type implements Frame.
func (*Publish) Type() Type { return TypePublish }

// Type implements Frame.
func (*Ack) Type() Type { return TypeAck }

// Type implements Frame.
func (*Deliver) Type() Type { return TypeDeliver }

// Type implements Frame.
func (*Error) Type() Type { return TypeError }
