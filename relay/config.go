package relay

import (
	"log/slog"
	"time"

	"liaison/relay/wire"
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
	// MaxOps bounds the distinct operations a connection subscribes or
	// publishes to over its life; a request for one more is answered with
	// code limit; default 256.
	MaxOps int
	// MaxFrame is the largest frame a client may send; a larger one closes
	// the connection with 1009; default wire.MaxClientFrame (4 MiB + 1 KiB).
	MaxFrame int
	// MsgRate is the sustained rate of frames per second a connection may
	// send after auth (token bucket); default 10,000; negative: unlimited.
	MsgRate float64
	// MsgBurst is the token bucket's size; default 2 x MsgRate. A frame
	// over the rate is answered with code rate_limited and not served; a
	// connection that sends MsgBurst such frames in a row is closed with
	// wire.CloseRateLimited.
	MsgBurst int
	// SlowConsumerTimeout disconnects a connection whose outbound queue
	// stays at or above half of QueueBytes this long (error slow_consumer,
	// close wire.CloseSlowConsumer); default 30 s.
	SlowConsumerTimeout time.Duration
	// MaxConnsPerAddr caps the open connections from one source IP address
	// (the TCP peer: behind a proxy, the proxy); the next upgrade is
	// answered with HTTP 429; default 4096; negative: unlimited.
	MaxConnsPerAddr int
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
	// Peers gives the other nodes' presence reports (nil: this node's
	// table only).
	Peers Peers
	// PresenceRetention is how long a subscription that ended stays in
	// the presence table with its last-seen time; default 1 h.
	PresenceRetention time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config { return c.withDefaults() }

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
	if c.MaxOps == 0 {
		c.MaxOps = 256
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = wire.MaxClientFrame
	}
	if c.MsgRate == 0 {
		c.MsgRate = 10000
	}
	if c.MsgBurst == 0 {
		c.MsgBurst = int(2 * c.MsgRate)
		if c.MsgBurst < 1 {
			c.MsgBurst = 1
		}
	}
	if c.SlowConsumerTimeout == 0 {
		c.SlowConsumerTimeout = 30 * time.Second
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = 4096
	}
	if c.PresenceRetention == 0 {
		c.PresenceRetention = time.Hour
	}
	if c.ReadBatch == 0 {
		c.ReadBatch = 256
	}
	return c
}
