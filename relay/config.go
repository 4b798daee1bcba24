package relay

import (
	"log/slog"
	"time"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	// NodeID is announced in hello and welcome.
	NodeID string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// WriteTimeout bounds every write to a connection; default 10 s.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the WebSocket upgrade; default 10 s.
	HandshakeTimeout time.Duration
	// ChallengeTTL is how long after hello the challenge may be signed: an
	// auth arriving later is refused (reason "expired"); default 30 s. The
	// connection is closed if no auth arrives within ChallengeTTL + 2 s.
	ChallengeTTL time.Duration
	// RequireChannelBinding refuses, on TLS connections, logins whose
	// signature does not cover the TLS channel (reason "unbound"). Off by
	// default so that browsers, which cannot read the TLS exporter, can log
	// in; see docs/protocol.md, Authentication.
	RequireChannelBinding bool
	// PingInterval is how often the server pings; default 30 s.
	PingInterval time.Duration
	// IdleTimeout closes a connection that sent nothing (not even a pong)
	// for this long; default 75 s.
	IdleTimeout time.Duration
	// MaxSubscriptions per connection; default 256.
	MaxSubscriptions int
	// MaxInflight bounds publishes awaiting commit per connection; the
	// reader stops reading when it is reached (TCP backpressure); default
	// 1024.
	MaxInflight int
	// QueueBytes bounds a connection's outbound queue; live deliveries
	// beyond it switch the subscriber to reading from the log; default
	// 1 MiB.
	QueueBytes int
	// ReadBatch bounds the entries read from the log per deliver frame;
	// default 256.
	ReadBatch int
	// AllowedOrigins lists the Origin header values accepted from
	// browsers. Requests without an Origin header (non-browser clients)
	// are accepted. Empty: only same-origin browser requests.
	AllowedOrigins []string
	// OpenOps lets any authenticated client publish to and subscribe to
	// operations that have no roster. For tests and benchmarks only.
	// Without it, an operation without a roster accepts only a genesis
	// roster commit (from any authenticated identity, which must be the
	// commit's signer).
	OpenOps bool
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 30 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 75 * time.Second
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 256
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 1024
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 1 << 20
	}
	if c.ReadBatch == 0 {
		c.ReadBatch = 256
	}
	return c
}
