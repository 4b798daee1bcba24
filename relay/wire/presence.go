package wire

import (
	"errors"
	"fmt"
)

// Presence frames (0x50-0x5f belong to tasking, delivery and presence).
const (
	// TypePresenceReq asks for an operation's presence and delivery table.
	TypePresenceReq Type = 0x50 // client -> server
	// TypePresence answers it.
	TypePresence Type = 0x51 // server -> client
)

// MaxPresenceEntries bounds the entries of one presence frame.
const MaxPresenceEntries = MaxDeliverEntries

// PresenceReq asks the node for operation Op's presence and delivery table,
// merged across the cluster's nodes.
type PresenceReq struct {
	Req uint64 `cbor:"1,keyasint"`
	Op  string `cbor:"2,keyasint"`
}

// Presence answers a PresenceReq: one entry per connection (device) that
// subscribed to the operation on some node, connected now or recently.
// Truncated is true when the table had more than MaxPresenceEntries entries
// (connected ones are sent first, then the most recently seen).
type Presence struct {
	Req       uint64          `cbor:"1,keyasint"`
	Op        string          `cbor:"2,keyasint"`
	Entries   []PresenceEntry `cbor:"3,keyasint"`
	Truncated bool            `cbor:"4,keyasint,omitempty"`
	// Time is the answering node's clock, Unix milliseconds.
	Time int64 `cbor:"5,keyasint"`
}

// PresenceEntry is one connection's presence in an operation, as a node
// reports it. Member is the connection's authenticated identity key (absent
// for an anonymous connection). Delivered is the highest sequence of the
// operation written to the connection (0: none yet).
type PresenceEntry struct {
	Member    []byte `cbor:"1,keyasint,omitempty"`
	Node      string `cbor:"2,keyasint"`
	Conn      string `cbor:"3,keyasint"`
	Connected bool   `cbor:"4,keyasint,omitempty"`
	Since     int64  `cbor:"5,keyasint"`
	LastSeen  int64  `cbor:"6,keyasint"`
	Delivered uint64 `cbor:"7,keyasint,omitempty"`
}

// Type implements Frame.
func (*PresenceReq) Type() Type { return TypePresenceReq }

// Type implements Frame.
func (*Presence) Type() Type { return TypePresence }

func (p *PresenceReq) validate() error { return checkOp(p.Op) }

func (p *Presence) validate() error {
	if err := checkOp(p.Op); err != nil {
		return err
	}
	if len(p.Entries) > MaxPresenceEntries {
		return fmt.Errorf("presence: at most %d entries", MaxPresenceEntries)
	}
	for i := range p.Entries {
		if err := p.Entries[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks an entry's bounds.
func (e *PresenceEntry) Validate() error {
	if len(e.Member) != 0 && len(e.Member) != 32 {
		return errors.New("presence: member must be 32 bytes")
	}
	if len(e.Node) == 0 || len(e.Node) > 128 || len(e.Conn) > 128 {
		return errors.New("presence: node or connection id out of bounds")
	}
	if e.Since < 0 || e.LastSeen < 0 {
		return errors.New("presence: negative time")
	}
	return nil
}

// PresenceGossip is what a node tells the other nodes of the cluster about
// its local presence table (carried over the cluster's own authenticated
// channel, never to clients). It reuses the entry type and its bounds.
type PresenceGossip struct {
	Node    string          `cbor:"1,keyasint"`
	Time    int64           `cbor:"2,keyasint"`
	Ops     []string        `cbor:"3,keyasint"`
	Entries []PresenceEntry `cbor:"4,keyasint"` // Entries[i] belongs to Ops[OpIndex[i]]
	OpIndex []uint32        `cbor:"5,keyasint"`
}

// MaxGossipEntries bounds a gossip message.
const MaxGossipEntries = 1 << 16

var gossipDec = func() func([]byte, any) error {
	dm, err := decOptions(MaxGossipEntries).DecMode()
	if err != nil {
		panic(err)
	}
	return dm.Unmarshal
}()

// EncodeGossip encodes g.
func EncodeGossip(g *PresenceGossip) ([]byte, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	return encMode.Marshal(g)
}

// DecodeGossip decodes and checks a gossip message of at most maxBytes.
func DecodeGossip(b []byte, maxBytes int) (*PresenceGossip, error) {
	if len(b) > maxBytes {
		return nil, fmt.Errorf("%w: gossip of %d bytes", ErrMalformed, len(b))
	}
	g := new(PresenceGossip)
	if err := gossipDec(b, g); err != nil {
		return nil, fmt.Errorf("%w: gossip: %v", ErrMalformed, err)
	}
	if err := g.validate(); err != nil {
		return nil, fmt.Errorf("%w: gossip: %v", ErrMalformed, err)
	}
	return g, nil
}

func (g *PresenceGossip) validate() error {
	if len(g.Node) == 0 || len(g.Node) > 128 {
		return errors.New("gossip: node id out of bounds")
	}
	if len(g.Entries) != len(g.OpIndex) || len(g.Entries) > MaxGossipEntries || len(g.Ops) > MaxGossipEntries {
		return errors.New("gossip: entry count out of bounds")
	}
	for _, op := range g.Ops {
		if err := checkOp(op); err != nil {
			return err
		}
	}
	for i := range g.Entries {
		if int(g.OpIndex[i]) >= len(g.Ops) {
			return errors.New("gossip: operation index out of range")
		}
		if err := g.Entries[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}
