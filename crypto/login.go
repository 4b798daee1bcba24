package crypto

import (
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
)

// Relay login constants.
const (
	// LoginChallengeSize is the size of a relay's login challenge.
	LoginChallengeSize = 32
	// ChannelBindingSize is the size of TLS channel-binding keying
	// material (RFC 9266 tls-exporter).
	ChannelBindingSize = 32
	// ChannelBindingLabel is the TLS exporter label of RFC 9266; the
	// exporter context is empty.
	ChannelBindingLabel = "EXPORTER-Channel-Binding"
	// MaxLoginNodeLen bounds the node id bound into a login.
	MaxLoginNodeLen = 255
)

// ChannelBinding returns the RFC 9266 tls-exporter value of a TLS
// connection's state, or nil when there is none (no TLS, or TLS 1.2
// without extended master secret). Both ends compute it the same way.
func ChannelBinding(cs *tls.ConnectionState) []byte {
	if cs == nil {
		return nil
	}
	b, err := cs.ExportKeyingMaterial(ChannelBindingLabel, nil, ChannelBindingSize)
	if err != nil {
		return nil
	}
	return b
}

// Login is what a client signs to prove its identity to one relay node on
// one connection: the node's fresh challenge, the node's id and the time it
// announced in its hello, and, where the connection is TLS and the client
// can read it, the TLS channel's tls-exporter keying material (RFC 9266).
// A nil Channel means the login is not bound to a TLS channel.
type Login struct {
	Challenge []byte // LoginChallengeSize bytes from the hello
	Node      string // node id from the hello
	Time      int64  // hello time, Unix milliseconds
	Channel   []byte // nil, or ChannelBindingSize bytes of exporter output
}

// message returns the signed bytes:
//
//	ctxRelayLogin || 0x00 || challenge [32] || str8 node || time u64 ||
//	binding u8 (0 none, 1 tls-exporter) || channel [32 if binding = 1]
func (l *Login) message() ([]byte, error) {
	if len(l.Challenge) != LoginChallengeSize {
		return nil, fmt.Errorf("%w: login challenge of %d bytes", ErrMalformed, len(l.Challenge))
	}
	if len(l.Node) > MaxLoginNodeLen {
		return nil, fmt.Errorf("%w: login node id of %d bytes", ErrMalformed, len(l.Node))
	}
	if l.Channel != nil && len(l.Channel) != ChannelBindingSize {
		return nil, fmt.Errorf("%w: channel binding of %d bytes", ErrMalformed, len(l.Channel))
	}
	w := &writer{b: make([]byte, 0, len(ctxRelayLogin)+1+LoginChallengeSize+1+len(l.Node)+8+1+ChannelBindingSize)}
	w.raw([]byte(ctxRelayLogin))
	w.u8(0)
	w.raw(l.Challenge)
	w.str8(l.Node)
	w.u64(uint64(l.Time))
	if l.Channel == nil {
		w.u8(0)
	} else {
		w.u8(1)
		w.raw(l.Channel)
	}
	return w.b, nil
}

// SignLogin signs a relay login with the identity key, under its own context
// string so the signature is valid nowhere else.
func (id *Identity) SignLogin(l Login) ([]byte, error) {
	m, err := l.message()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(id.sign, m), nil
}

// VerifyLogin checks a signature made by SignLogin with the identity key pub.
func VerifyLogin(pub [32]byte, l Login, sig []byte) error {
	m, err := l.message()
	if err != nil {
		return err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub[:], m, sig) {
		return fmt.Errorf("%w: login", ErrBadSignature)
	}
	return nil
}
