package wire

import "errors"

// Retained carries one roster commit kept below an operation's oldest held
// entry. A server sends them, in sequence order, in answer to a Subscribe
// with Retained set whose From was below the oldest entry: after the
// Subscribed frame (whose From is then the oldest entry) and before any
// Deliver frame of that subscription. The commit is verified by its signature and roster
// chain (docs/crypto.md), not by the relay's hash chain.
type Retained struct {
	Op    string `cbor:"1,keyasint"`
	Seq   uint64 `cbor:"2,keyasint"`
	Entry []byte `cbor:"3,keyasint"`
}

// Type implements Frame.
func (*Retained) Type() Type { return TypeRetained }

func (r *Retained) validate() error {
	if r.Seq == 0 {
		return errors.New("retained: sequence missing")
	}
	if len(r.Entry) == 0 || len(r.Entry) > MaxCommit {
		return errors.New("retained: entry size out of range")
	}
	return checkOp(r.Op)
}
