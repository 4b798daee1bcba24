package wire

import "fmt"

// Code is a stable error code carried in an Error frame.
type Code uint16

// Error codes. Values are stable: they are part of the protocol. Whether a
// request may be retried is part of each code's meaning (see Retryable).
const (
	// CodeBadFrame: the frame could not be decoded or violates the protocol.
	// The server closes the connection after sending it.
	CodeBadFrame Code = 1
	// CodeVersion: no common protocol version.
	CodeVersion Code = 2
	// CodeUnauthenticated: a request came before a successful Auth.
	CodeUnauthenticated Code = 3
	// CodeForbidden: the identity may not do this.
	CodeForbidden Code = 4
	// CodeBadRequest: a field is invalid (operation name, message id,
	// class, sequence); nothing was changed.
	CodeBadRequest Code = 5
	// CodeTooLarge: an envelope or frame exceeds a limit.
	CodeTooLarge Code = 6
	// CodeCompacted: the requested sequence was removed by retention; Seq
	// names the oldest sequence still held.
	CodeCompacted Code = 7
	// CodeUnavailable: the node cannot serve the request now (no leader,
	// shutting down, behind the leader). Retry, possibly on another node.
	CodeUnavailable Code = 8
	// CodeTimeout: the outcome of a publish is unknown. Retry with the same
	// MsgID: the retry is answered with the original sequence if it had
	// committed.
	CodeTimeout Code = 9
	// CodeRateLimited: too many requests; retry later.
	CodeRateLimited Code = 10
	// CodeSlowConsumer: the client did not read fast enough and is being
	// disconnected; resume from the last sequence received.
	CodeSlowConsumer Code = 11
	// CodeLimit: a per-connection limit (subscriptions, in-flight
	// publishes) is reached.
	CodeLimit Code = 12
	// CodeInternal: an unexpected server error. Retrying a publish with the
	// same MsgID is safe.
	CodeInternal Code = 13
	// CodeStaleHead: a roster commit does not name the operation's current
	// roster head (another commit got in first). Catch up, rebuild the
	// commit on the new head, and publish it with a new MsgID.
	CodeStaleHead Code = 14
)

var codeNames = map[Code]string{
	CodeBadFrame:        "bad_frame",
	CodeVersion:         "version",
	CodeUnauthenticated: "unauthenticated",
	CodeForbidden:       "forbidden",
	CodeBadRequest:      "bad_request",
	CodeTooLarge:        "too_large",
	CodeCompacted:       "compacted",
	CodeUnavailable:     "unavailable",
	CodeTimeout:         "timeout",
	CodeRateLimited:     "rate_limited",
	CodeSlowConsumer:    "slow_consumer",
	CodeLimit:           "limit",
	CodeInternal:        "internal",
	CodeStaleHead:       "stale_head",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Retryable reports whether a request that failed with c may be sent again
// unchanged (for a publish: with the same MsgID).
func (c Code) Retryable() bool {
	switch c {
	case CodeUnavailable, CodeTimeout, CodeRateLimited, CodeInternal, CodeSlowConsumer:
		return true
	}
	return false
}

// Error makes an Error frame usable as a Go error.
func (e *Error) Error() string {
	if e.Message == "" {
		return "liaison: " + e.Code.String()
	}
	return "liaison: " + e.Code.String() + ": " + e.Message
}

// WebSocket close codes the server uses, beside the standard 1000 (normal),
// 1001 (going away) and 1009 (message too big).
const (
	CloseBadFrame     = 4001
	CloseSlowConsumer = 4002
	CloseIdle         = 4003
	CloseAuth         = 4004
	// CloseRateLimited: the client kept sending over its rate after
	// rate_limited errors.
	CloseRateLimited = 4005
)
