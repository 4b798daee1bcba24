// Package relaytest is for tests that speak raw wire frames to a relay over
// a real WebSocket: it holds the one implementation of the client side of
// the Hello/Auth/Welcome handshake they share, so that a change to the
// handshake changes one place. It is not for production code.
package relaytest

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/relay/wire"
)

// Timeout bounds each read of the handshake.
const Timeout = 15 * time.Second

// NewIdentity returns a fresh identity named name (for tests).
func NewIdentity(name string) *crypto.Identity {
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		panic(fmt.Sprintf("relaytest: new identity: %v", err))
	}
	return id
}

// ReadFrame reads and decodes one frame, waiting at most Timeout.
func ReadFrame(ws *websocket.Conn) (wire.Frame, error) {
	_ = ws.SetReadDeadline(time.Now().Add(Timeout))
	mt, b, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if mt != websocket.BinaryMessage {
		return nil, errors.New("relaytest: text message")
	}
	return wire.Decode(b)
}

// WriteFrame encodes and writes one frame.
func WriteFrame(ws *websocket.Conn, f wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(Timeout))
	return ws.WriteMessage(websocket.BinaryMessage, b)
}

// ChannelBinding returns the RFC 9266 tls-exporter value of a wss://
// connection, nil for ws://.
func ChannelBinding(ws *websocket.Conn) []byte {
	tc, ok := ws.NetConn().(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return crypto.ChannelBinding(&cs)
}

// Auth returns the auth frame id sends in answer to h, bound to the TLS
// channel cb when cb is not nil.
func Auth(h *wire.Hello, id *crypto.Identity, cb []byte) (*wire.Auth, error) {
	sig, err := id.SignLogin(crypto.Login{Challenge: h.Challenge, Node: h.Node, Time: h.Time, Channel: cb})
	if err != nil {
		return nil, err
	}
	a := &wire.Auth{Version: wire.Version, Identity: id.Token().Marshal(), Signature: sig, Client: "relaytest"}
	if cb != nil {
		a.Binding = wire.BindingTLSExporter
	}
	return a, nil
}

// ReadHello reads the hello a relay sends first.
func ReadHello(ws *websocket.Conn) (*wire.Hello, error) {
	f, err := ReadFrame(ws)
	if err != nil {
		return nil, err
	}
	h, ok := f.(*wire.Hello)
	if !ok {
		return nil, fmt.Errorf("relaytest: first frame is %s, not hello", f.Type())
	}
	return h, nil
}

// Handshake authenticates ws as id (a fresh identity when id is nil):
// it reads the hello, sends an auth signed for this connection (bound to
// its TLS channel on wss://) and waits for welcome. An error frame instead
// of welcome is returned as the error (a *wire.Error).
func Handshake(ws *websocket.Conn, id *crypto.Identity) (*wire.Welcome, error) {
	if id == nil {
		id = NewIdentity("relaytest")
	}
	h, err := ReadHello(ws)
	if err != nil {
		return nil, err
	}
	a, err := Auth(h, id, ChannelBinding(ws))
	if err != nil {
		return nil, err
	}
	if err := WriteFrame(ws, a); err != nil {
		return nil, err
	}
	f, err := ReadFrame(ws)
	if err != nil {
		return nil, err
	}
	switch f := f.(type) {
	case *wire.Welcome:
		return f, nil
	case *wire.Error:
		return nil, f
	}
	return nil, fmt.Errorf("relaytest: %s instead of welcome", f.Type())
}
