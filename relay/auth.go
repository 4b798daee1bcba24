package relay

import (
	"fmt"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// authGrace is how long past the challenge's expiry the relay keeps reading
// for an auth, so that a late one is answered (reason "expired") rather
// than cut off.
const authGrace = 2 * time.Second

// Reasons counted in Stats.AuthFailures.
const (
	authNoAuthFrame  = "no_auth_frame" // the first frame was not auth
	authVersion      = "version"       // no common protocol version
	authAnonymous    = "anonymous"     // no identity or signature
	authBadToken     = "bad_token"     // identity token does not parse or verify
	authBadSignature = "bad_signature" // signature does not verify (wrong key, replay from another connection)
	authExpired      = "expired"       // auth later than ChallengeTTL after hello
	authBinding      = "binding"       // claims a TLS channel binding the connection does not have
	authUnbound      = "unbound"       // no channel binding on TLS while RequireChannelBinding
	authSecond       = "second_auth"   // a second auth on an authenticated connection
	authTimeout      = "timeout"       // no auth before ChallengeTTL + 2 s: closed CloseAuth
)

// ident is what a connection keeps of its verified identity token: the
// signing key and the name (the HPKE key, over a kilobyte, and the
// signature would otherwise stay in memory for the connection's lifetime).
type ident struct {
	key  [32]byte
	name string
}

// Identity returns the connection's authenticated identity (the signing key
// and name of its verified token, without the HPKE key and the signature,
// which the relay has no use for), or nil before the handshake completes.
// It is set once, before welcome is sent, and never changes: every request
// on the connection is made by this identity.
func (c *conn) Identity() *crypto.Token {
	id := c.identity.Load()
	if id == nil {
		return nil
	}
	return &crypto.Token{SigningKey: id.key, Name: id.name}
}

// identityKey returns the authenticated identity's Ed25519 key.
func (c *conn) identityKey() [32]byte {
	if id := c.identity.Load(); id != nil {
		return id.key
	}
	return [32]byte{}
}

// refuseAuth counts a refused handshake and closes the connection with
// CloseAuth after an error frame.
func (c *conn) refuseAuth(reason string, code wire.Code, msg string) bool {
	c.s.stats.authFailures.inc(reason)
	c.failClose(code, msg, wire.CloseAuth)
	return false
}

// auth handles the first client frame: the client proves its identity by
// signing this connection's challenge (crypto.Login), which is consumed by
// the first auth whatever its outcome.
func (c *conn) auth(f wire.Frame) bool {
	a, ok := f.(*wire.Auth)
	if !ok {
		return c.refuseAuth(authNoAuthFrame, wire.CodeUnauthenticated, "the first frame must be auth")
	}
	challenge := c.challenge
	c.challenge = nil // single use
	if a.Version != wire.Version {
		return c.refuseAuth(authVersion, wire.CodeVersion, fmt.Sprintf("version %d not supported; this node speaks %d", a.Version, wire.Version))
	}
	if time.Since(time.UnixMilli(c.helloTime)) > c.s.cfg.ChallengeTTL {
		return c.refuseAuth(authExpired, wire.CodeUnauthenticated, fmt.Sprintf("the challenge expired (%s after hello)", c.s.cfg.ChallengeTTL))
	}
	if len(a.Identity) == 0 || len(a.Signature) == 0 {
		return c.refuseAuth(authAnonymous, wire.CodeUnauthenticated, "auth must carry an identity token and a signature over the challenge")
	}
	tok, err := crypto.ParseToken(a.Identity)
	if err != nil {
		return c.refuseAuth(authBadToken, wire.CodeUnauthenticated, "identity token: "+err.Error())
	}
	login := crypto.Login{Challenge: challenge, Node: c.s.cfg.NodeID, Time: c.helloTime}
	switch {
	case a.Binding == wire.BindingTLSExporter && c.channel == nil:
		return c.refuseAuth(authBinding, wire.CodeUnauthenticated, "the connection has no TLS channel binding")
	case a.Binding == wire.BindingTLSExporter:
		login.Channel = c.channel
	case c.channel != nil && c.s.cfg.RequireChannelBinding:
		return c.refuseAuth(authUnbound, wire.CodeUnauthenticated, "this node requires the login to be bound to the TLS channel (tls-exporter)")
	}
	if err := crypto.VerifyLogin(tok.SigningKey, login, a.Signature); err != nil {
		return c.refuseAuth(authBadSignature, wire.CodeUnauthenticated, "the signature does not verify for this connection's challenge")
	}
	if c.channel != nil && login.Channel == nil {
		c.s.stats.unboundLogins.Add(1)
	}
	c.identity.Store(&ident{key: tok.SigningKey, name: tok.Name})
	if err := c.touch(); err != nil {
		return false
	}
	c.send(&wire.Welcome{Version: wire.Version, Node: c.s.cfg.NodeID, Session: c.id})
	c.log.Debug("client authenticated", "client", a.Client, "name", tok.Name, "bound", login.Channel != nil)
	return true
}
