package clients

import "time"

// transport is one WebSocket connection carrying binary messages: the seam
// between the client and the platform's WebSocket. Native builds use
// gorilla/websocket (transport_gorilla.go); GOOS=js builds use the browser's
// WebSocket (transport_js.go). A transport allows one concurrent reader and
// one concurrent writer; Close may be called at any time, more than once.
type transport interface {
	// ReadMessage returns the next message; binary is false for a text
	// message. It fails once the read deadline has passed. b may be reused
	// by the next call: decode it before.
	ReadMessage() (binary bool, b []byte, err error)
	// WriteMessage sends b as one binary message, failing if it cannot be
	// handed over before deadline.
	WriteMessage(b []byte, deadline time.Time) error
	// WriteMessages sends each of bs as one binary message, in order, in
	// as few network writes as the platform allows.
	WriteMessages(bs [][]byte, deadline time.Time) error
	// SetReadDeadline bounds the pending and later reads; zero means none.
	SetReadDeadline(t time.Time)
	// OnPing registers fn, called after the transport answered a ping from
	// the relay. A transport that cannot see pings (a browser answers them
	// itself) never calls it and ignores read deadlines while idle.
	OnPing(fn func())
	// Close closes the connection; a blocked ReadMessage returns an error.
	Close() error
	// ChannelBinding returns the RFC 9266 tls-exporter value of a wss://
	// connection, or nil when there is none (ws://, or a browser, which
	// does not expose it).
	ChannelBinding() []byte
}
