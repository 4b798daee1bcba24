package clients

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"time"

	"liaison/crypto"
)

// AuthSigner authenticates a connection: given the login to sign (the
// relay's fresh challenge, node id and hello time, and the TLS channel
// binding when the connection has one) it returns the binary identity token
// and the signature (crypto.Identity.SignLogin) to put in the auth frame. It
// is called once per connection, including reconnects.
type AuthSigner func(login crypto.Login) (identity, signature []byte, err error)

// IdentitySigner returns an AuthSigner that signs with id.
func IdentitySigner(id *crypto.Identity) AuthSigner {
	tok := id.Token().Marshal()
	return func(l crypto.Login) ([]byte, []byte, error) {
		sig, err := id.SignLogin(l)
		return tok, sig, err
	}
}

// Options configures a Client. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Logger receives connection events. Nil discards them.
	Logger *slog.Logger
	// ClientName is sent in the auth frame, for the relay's logs.
	// Default "liaison-go".
	ClientName string
	// Identity is the person's identity; the client proves it to every
	// relay it connects to by signing the relay's challenge. When neither
	// Identity nor Signer is set, Dial generates an ephemeral identity
	// (useful for tests and load generators; a relay lets it use only
	// operations that have no roster, with OpenOps).
	Identity *crypto.Identity
	// Signer, if set, signs the relay's challenge on every connection
	// instead of Identity (for keys held elsewhere).
	Signer AuthSigner
	// TLSConfig is used for wss:// URLs. Nil uses the system defaults.
	TLSConfig *tls.Config
	// DialTimeout bounds connecting plus the handshake (hello, auth,
	// welcome) of one attempt. Default 10s.
	DialTimeout time.Duration
	// WriteTimeout is the deadline of every frame write. A write that does
	// not complete in time drops the connection. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout drops a connection on which nothing (no frame, no ping)
	// arrived for this long. The relay pings every 30s. Default 75s.
	IdleTimeout time.Duration
	// ReconnectMin is the first delay of the jittered exponential backoff
	// used between reconnect attempts and between re-sends of a publish that
	// failed with a retryable error. Default 100ms.
	ReconnectMin time.Duration
	// ReconnectMax caps that backoff. Default 10s.
	ReconnectMax time.Duration
	// MaxInFlight bounds the publishes awaiting an ack; Publish blocks
	// while it is reached. Keep it at or below the relay's per-connection
	// in-flight limit. Default 1024.
	MaxInFlight int
	// SubscriptionBuffer is the capacity of each Subscription's Messages
	// channel. Default 1024.
	SubscriptionBuffer int
	// NetDialContext, if set, opens the TCP connections (to pick a source
	// address, say). Nil uses a plain net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ClientName == "" {
		o.ClientName = "liaison-go"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 75 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 100 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 10 * time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1024
	}
	if o.SubscriptionBuffer <= 0 {
		o.SubscriptionBuffer = 1024
	}
	return o
}
