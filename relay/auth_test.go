package relay

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

// newTLSServer serves a relay over TLS (httptest's certificate).
func newTLSServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(newMemLog(), cfg)
	hs := httptest.NewTLSServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, "wss" + strings.TrimPrefix(hs.URL, "https") + "/ws"
}

func dialTLS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // httptest's self-signed certificate
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// authWith sends the auth built by mk for the hello and returns the answer.
func authWith(t *testing.T, ws *websocket.Conn, mk func(h *wire.Hello) *wire.Auth) wire.Frame {
	t.Helper()
	h, err := relaytest.ReadHello(ws)
	if err != nil {
		t.Fatal(err)
	}
	if err := relaytest.WriteFrame(ws, mk(h)); err != nil {
		t.Fatal(err)
	}
	f, err := relaytest.ReadFrame(ws)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTLSChannelBinding(t *testing.T) {
	s, url := newTLSServer(t, Config{NodeID: "n1"})
	id := relaytest.NewIdentity("alice")

	// Bound to this connection's TLS channel: accepted.
	ws := dialTLS(t, url)
	if _, err := relaytest.Handshake(ws, id); err != nil {
		t.Fatalf("bound login: %v", err)
	}
	if cb := relaytest.ChannelBinding(ws); len(cb) != 32 {
		t.Fatalf("channel binding %x", cb)
	}

	// Bound to another channel (as a relaying impostor would be): refused.
	other := relaytest.ChannelBinding(dialTLS(t, url))
	f := authWith(t, dialTLS(t, url), func(h *wire.Hello) *wire.Auth {
		a, err := relaytest.Auth(h, id, other)
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
	if e, ok := f.(*wire.Error); !ok || e.Code != wire.CodeUnauthenticated {
		t.Fatalf("login bound to another channel: %#v", f)
	}

	// Unbound (a browser): accepted and counted.
	f = authWith(t, dialTLS(t, url), func(h *wire.Hello) *wire.Auth {
		a, err := relaytest.Auth(h, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
	if _, ok := f.(*wire.Welcome); !ok {
		t.Fatalf("unbound login: %#v", f)
	}
	st := s.Stats()
	if st.UnboundLogins != 1 || st.AuthFailures["bad_signature"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRequireChannelBinding(t *testing.T) {
	s, url := newTLSServer(t, Config{NodeID: "n1", RequireChannelBinding: true})
	id := relaytest.NewIdentity("alice")
	ws := dialTLS(t, url)
	f := authWith(t, ws, func(h *wire.Hello) *wire.Auth {
		a, err := relaytest.Auth(h, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
	if e, ok := f.(*wire.Error); !ok || e.Code != wire.CodeUnauthenticated {
		t.Fatalf("unbound login: %#v", f)
	}
	if _, err := relaytest.ReadFrame(ws); !websocket.IsCloseError(err, wire.CloseAuth) {
		t.Fatalf("want close %d, got %v", wire.CloseAuth, err)
	}
	if s.Stats().AuthFailures["unbound"] != 1 {
		t.Fatalf("auth failures %v", s.Stats().AuthFailures)
	}
	if _, err := relaytest.Handshake(dialTLS(t, url), id); err != nil {
		t.Fatalf("bound login: %v", err)
	}
}

func TestIdentityOfConnection(t *testing.T) {
	s, _, hs := newTestServer(t, Config{NodeID: "n1"})
	id := relaytest.NewIdentity("alice")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := relaytest.Handshake(ws, id); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	var got [32]byte
	for c := range s.conns {
		got = c.Identity().SigningKey
	}
	s.mu.Unlock()
	if got != id.PublicKey() {
		t.Fatal("the connection's identity is not the one that signed")
	}
}
