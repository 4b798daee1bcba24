package clients

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// MsgID is a client message id: it makes a publish idempotent per operation.
type MsgID [16]byte

// NewMsgID returns a fresh time-ordered message id: the first 6 bytes are
// the current Unix time in milliseconds, big-endian, the other 10 come from
// crypto/rand. Time order keeps the relay's dedupe index append-mostly.
func NewMsgID() MsgID {
	return newMsgIDAt(time.Now())
}

func newMsgIDAt(t time.Time) MsgID {
	var id MsgID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(id[:6], ms[2:])
	rand.Read(id[6:])
	return id
}

// Time returns the millisecond timestamp in a time-ordered id.
func (id MsgID) Time() time.Time {
	var ms [8]byte
	copy(ms[2:], id[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:])))
}

// String returns the id in hex.
func (id MsgID) String() string { return hex.EncodeToString(id[:]) }
