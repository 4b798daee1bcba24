//go:build !js

package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
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
	rbuf     *[]byte // the last message read, from readBufs; reader only
}

// readBufs holds the buffers messages are read into, shared by every
// connection: a message is decoded (into frames that own their bytes)
// before the next read, so a connection holds a buffer only while it reads
// one message, and a busy one reuses it instead of growing a new one for
// every message.
var readBufs = sync.Pool{New: func() any { return new([]byte) }}

// readBufferSize is the size of a connection's read buffer.
const readBufferSize = 16 << 10

// minReadBuf is the capacity a fresh read buffer starts with.
const minReadBuf = 16 << 10

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

// ReadMessage returns the next message, in a buffer that is valid until
// the next call.
func (t *gorillaTransport) ReadMessage() (bool, []byte, error) {
	if t.rbuf != nil {
		readBufs.Put(t.rbuf)
		t.rbuf = nil
	}
	mt, r, err := t.ws.NextReader()
	if err != nil {
		return false, nil, err
	}
	bp := readBufs.Get().(*[]byte)
	b := (*bp)[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, minReadBuf)
	}
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
			*bp = b[:0]
			readBufs.Put(bp)
			return false, nil, err
		}
	}
	*bp = b
	t.rbuf = bp
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
	return crypto.ChannelBinding(&cs)
}
