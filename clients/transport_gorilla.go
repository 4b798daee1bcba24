//go:build !js

package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"liaison/crypto"
	"liaison/internal/netbatch"
	"liaison/relay/wire"
)

// gorillaTransport is the native transport.
type gorillaTransport struct {
	ws       *websocket.Conn
	nc       *netbatch.Conn // the network connection under ws
	wtimeout time.Duration
	hint     int // the size to read the next message into; reader only
}

// readBufferSize is the size of a connection's read buffer.
const readBufferSize = 16 << 10

// minReadBuf is the smallest buffer a message is read into.
const minReadBuf = 512

// dialTransport opens a WebSocket to u.
func dialTransport(ctx context.Context, u string, o *Options) (transport, error) {
	dial := o.NetDialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var nc *netbatch.Conn
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: o.DialTimeout,
		// Big enough that one read takes in several small deliver frames.
		ReadBufferSize:  readBufferSize,
		TLSClientConfig: o.TLSConfig,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			nc = netbatch.Wrap(c)
			return nc, nil
		},
	}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	ws.SetReadLimit(wire.MaxServerFrame)
	return &gorillaTransport{ws: ws, nc: nc, wtimeout: o.WriteTimeout}, nil
}

// ReadMessage returns the next message in a buffer of its own, which the
// caller keeps (deliver frames are decoded in place, their envelopes
// aliasing it). The buffer is sized from the messages before, so a
// stream of similar frames is read without growing (copying) a buffer.
func (t *gorillaTransport) ReadMessage() (bool, []byte, error) {
	mt, r, err := t.ws.NextReader()
	if err != nil {
		return false, nil, err
	}
	b := make([]byte, 0, max(t.hint, minReadBuf))
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, nil, err
		}
	}
	// The next buffer holds a message like this one, with a little room;
	// after a big message the size comes down gradually.
	t.hint = max(len(b)+len(b)/32+64, t.hint-t.hint/8)
	return mt == websocket.BinaryMessage, b, nil
}

func (t *gorillaTransport) WriteMessage(b []byte, deadline time.Time) error {
	t.ws.SetWriteDeadline(deadline)
	return t.ws.WriteMessage(websocket.BinaryMessage, b)
}

// WriteMessages writes bs into one batch of the network connection and
// sends it with one write.
func (t *gorillaTransport) WriteMessages(bs [][]byte, deadline time.Time) error {
	if t.nc == nil || len(bs) == 1 {
		for _, b := range bs {
			if err := t.WriteMessage(b, deadline); err != nil {
				return err
			}
		}
		return nil
	}
	t.ws.SetWriteDeadline(deadline)
	t.nc.Begin()
	for _, b := range bs {
		if err := t.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
			t.nc.Flush()
			return err
		}
	}
	t.nc.SetWriteDeadline(deadline)
	return t.nc.Flush()
}

func (t *gorillaTransport) SetReadDeadline(d time.Time) { t.ws.SetReadDeadline(d) }

func (t *gorillaTransport) OnPing(fn func()) {
	t.ws.SetPingHandler(func(data string) error {
		fn()
		// A failed pong surfaces as a failed read or write soon enough.
		t.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(t.wtimeout))
		return nil
	})
}

func (t *gorillaTransport) Close() error { return t.ws.Close() }

func (t *gorillaTransport) ChannelBinding() []byte { return channelBinding(t.ws) }

// channelBinding returns the RFC 9266 tls-exporter value of a wss://
// connection, or nil for ws:// (or TLS without exporter support).
func channelBinding(ws *websocket.Conn) []byte {
	tc, ok := ws.NetConn().(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial(crypto.ChannelBindingLabel, nil, crypto.ChannelBindingSize)
	if err != nil {
		return nil
	}
	return b
}
