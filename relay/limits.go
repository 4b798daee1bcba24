package relay

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"liaison/relay/wire"
)

// Limits counted in Stats.Limits (docs/protocol.md, Limits).
const (
	limitFrameSize    = "frame_size"     // frame over MaxFrame: closed 1009
	limitRate         = "rate_limited"   // frame over the rate: error rate_limited
	limitRateClosed   = "rate_closed"    // kept going: closed CloseRateLimited
	limitOps          = "max_ops"        // one operation too many: error limit
	limitIdle         = "idle"           // nothing received within IdleTimeout: closed CloseIdle
	limitSlowConsumer = "slow_consumer"  // queue stayed full: closed CloseSlowConsumer
	limitConnsPerAddr = "conns_per_addr" // upgrade refused with HTTP 429
	limitOrigin       = "origin"         // upgrade refused with HTTP 403
)

// bucket is a connection's token bucket for the frames it sends. Only the
// reader goroutine uses it.
type bucket struct {
	rate, burst, tokens float64
	last                int64 // monotonic ns (mono) of the last take
	strikes             int   // frames refused in a row
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take reports whether a frame may be served now, consuming a token.
func (b *bucket) take(now time.Time) bool {
	if b.rate < 0 {
		return true
	}
	// Before the first take the bucket is full anyway (tokens == burst).
	at := mono(now)
	if d := at - b.last; d > 0 {
		b.tokens += float64(d) / float64(time.Second) * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = at
	if b.tokens >= 1 {
		b.tokens--
		b.strikes = 0
		return true
	}
	b.strikes++
	return false
}

// rateLimited answers a frame refused by the bucket; it returns false when
// the connection is to be closed because the client keeps going.
func (c *conn) rateLimited(f wire.Frame) bool {
	c.s.stats.limits.inc(limitRate)
	if c.bucket.strikes >= c.s.cfg.MsgBurst {
		c.s.stats.limits.inc(limitRateClosed)
		c.failClose(wire.CodeRateLimited, fmt.Sprintf("over %g frames/s after %d rate_limited errors", c.s.cfg.MsgRate, c.bucket.strikes-1), wire.CloseRateLimited)
		return false
	}
	var req uint64
	var op string
	switch f := f.(type) {
	case *wire.Publish:
		req, op = f.Req, f.Op
	case *wire.Subscribe:
		req, op = f.Req, f.Op
	case *wire.Unsubscribe:
		op = f.Op
	}
	c.send(errorFrame(req, op, wire.CodeRateLimited, fmt.Sprintf("over %g frames/s; slow down", c.s.cfg.MsgRate)))
	return true
}

// useOp records that the connection uses op; it returns false (after
// answering with code limit) when that would exceed MaxOps.
func (c *conn) useOp(req uint64, op string) bool {
	if _, ok := c.ops[op]; ok {
		return true
	}
	if len(c.ops) >= c.s.cfg.MaxOps {
		c.s.stats.limits.inc(limitOps)
		c.send(errorFrame(req, op, wire.CodeLimit, fmt.Sprintf("at most %d operations per connection", c.s.cfg.MaxOps)))
		return false
	}
	if c.ops == nil {
		c.ops = make(map[string]struct{})
	}
	c.ops[op] = struct{}{}
	return true
}

// readFailed handles the error that ended the reader: an oversize frame
// (gorilla has sent 1009), the idle or handshake deadline, or the peer
// going away.
func (c *conn) readFailed(err error, authed bool) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		c.frameTooBig()
	case errors.As(err, &ne) && ne.Timeout():
		if authed {
			c.idleExpired()
		} else {
			c.authExpired()
		}
	case !isExpectedClose(err):
		c.log.Debug("read ended", "err", err)
	}
}

// frameTooBig counts and logs a message over MaxFrame (both readers close
// the connection with 1009).
func (c *conn) frameTooBig() {
	c.s.stats.limits.inc(limitFrameSize)
	c.log.Info("closing connection", "reason", "frame over the size limit", "limit", c.s.cfg.MaxFrame)
}

// noteQueueLocked tracks how long the outbound queue has stayed at or
// above half of QueueBytes and arms the slow-consumer check; c.mu is held.
func (c *conn) noteQueueLocked() {
	full := c.queued >= c.s.cfg.QueueBytes/2
	switch {
	case full && c.fullSince == 0:
		c.fullSince = mono(time.Now())
		if c.slowTimer == nil {
			c.slowTimer = time.AfterFunc(c.s.cfg.SlowConsumerTimeout, c.checkSlow)
		} else {
			c.slowTimer.Reset(c.s.cfg.SlowConsumerTimeout)
		}
	case !full && c.fullSince != 0:
		c.fullSince = 0
	}
}

// checkSlow runs SlowConsumerTimeout after the queue became full: if it
// has stayed full since, the client is a slow consumer.
func (c *conn) checkSlow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeCode != 0 || c.fullSince == 0 {
		return
	}
	if left := c.s.cfg.SlowConsumerTimeout - time.Duration(mono(time.Now())-c.fullSince); left > 0 {
		c.slowTimer.Reset(left)
		return
	}
	c.s.stats.limits.inc(limitSlowConsumer)
	c.log.Info("closing connection", "reason", "slow consumer", "queued", c.queued)
	// Drop what is not yet being written, so the error and the close go
	// out next; the writer stops after the frame it is writing.
	c.queued -= frameBytes(c.queue)
	c.queue = nil
	c.abort = true
	msg := fmt.Sprintf("outbound queue full for %s: resume from the last sequence received", c.s.cfg.SlowConsumerTimeout)
	if b, err := wire.Encode(errorFrame(0, "", wire.CodeSlowConsumer, msg)); err == nil {
		c.queue = append(c.queue, ctlFrame(b, ""))
		c.queued += len(b)
	}
	c.closeCode, c.closeText = wire.CloseSlowConsumer, wire.CodeSlowConsumer.String()
	for _, s := range c.subs {
		s.endLocked() // stop feeding it
	}
	c.room.Broadcast()
	if !c.writing {
		c.writing = true
		c.s.wg.Add(1)
		go c.writeLoop()
	}
}

// monoBase is the origin of mono.
var monoBase = time.Now()

// mono returns t as nanoseconds since the process started, on the
// monotonic clock when t has a monotonic reading (as time.Now's has): an
// int64 clock for connection state, 16 bytes smaller than a time.Time.
func mono(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// remoteHost returns the IP address of a "host:port" remote address.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// reserveAddr counts a new connection from host; false if at the cap.
func (s *Server) reserveAddr(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxConnsPerAddr > 0 && s.perAddr[host] >= s.cfg.MaxConnsPerAddr {
		return false
	}
	s.perAddr[host]++
	return true
}

func (s *Server) releaseAddrLocked(host string) {
	if s.perAddr[host]--; s.perAddr[host] <= 0 {
		delete(s.perAddr, host)
	}
}
