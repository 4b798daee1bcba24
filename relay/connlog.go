package relay

import (
	"context"
	"encoding/hex"
	"log/slog"
)

// connLog logs for a connection with its attributes (conn, remote and,
// once authenticated, identity). It builds them per record, only for
// records the logger keeps, rather than holding a derived logger: an idle
// connection would otherwise keep a few hundred bytes of formatted
// attributes.
type connLog struct{ c *conn }

// Debug logs at debug level.
func (l connLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }

// Info logs at info level.
func (l connLog) Info(msg string, args ...any) { l.log(slog.LevelInfo, msg, args) }

// Warn logs at warn level.
func (l connLog) Warn(msg string, args ...any) { l.log(slog.LevelWarn, msg, args) }

// Error logs at error level.
func (l connLog) Error(msg string, args ...any) { l.log(slog.LevelError, msg, args) }

func (l connLog) log(level slog.Level, msg string, args []any) {
	lg := l.c.s.cfg.Logger
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, 6+len(args))
	attrs = append(attrs, "conn", l.c.id, "remote", l.c.remote)
	if id := l.c.identity.Load(); id != nil {
		attrs = append(attrs, "identity", hex.EncodeToString(id.key[:8]))
	}
	lg.Log(ctx, level, msg, append(attrs, args...)...)
}
