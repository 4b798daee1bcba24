package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"liaison/crypto"
	"liaison/relay/relaytest"
	"liaison/relay/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memLog is an in-memory Log for the relay's unit tests.
type memLog struct {
	mu       sync.Mutex
	ready    error
	logs     map[string][][]byte
	rosters  map[string]*crypto.Roster
	watchers []func([]Batch)
}

func newMemLog() *memLog {
	return &memLog{logs: map[string][][]byte{}, rosters: map[string]*crypto.Roster{}}
}

func (m *memLog) Roster(op string) *crypto.Roster {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rosters[op]
}

func (m *memLog) Submit(p Publish, done func(Result, error)) {
	m.mu.Lock()
	if p.Kind == uint8(wire.KindCommit) {
		_, next, err := crypto.CheckCommit(m.rosters[p.Op], p.Envelope)
		if err != nil {
			m.mu.Unlock()
			done(Result{}, fmt.Errorf("%w: %v", ErrRejected, err))
			return
		}
		m.rosters[p.Op] = next
	}
	prev := m.headLocked(p.Op).Chain
	m.logs[p.Op] = append(m.logs[p.Op], p.Envelope)
	seq := uint64(len(m.logs[p.Op]))
	ws := m.watchers
	m.mu.Unlock()
	for _, w := range ws {
		w([]Batch{{Op: p.Op, Seq: seq, Prev: prev, Envelopes: [][]byte{p.Envelope}}})
	}
	done(Result{Seq: seq}, nil)
}

func (m *memLog) Read(op string, from uint64, maxCount, _ int) (Batch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := Batch{Op: op, Seq: from}
	l := m.logs[op]
	for i := uint64(1); i < from && i <= uint64(len(l)); i++ {
		b.Prev = chainNext(b.Prev, l[i-1])
	}
	for i := from; i <= uint64(len(l)) && len(b.Envelopes) < maxCount; i++ {
		b.Envelopes = append(b.Envelopes, l[i-1])
	}
	return b, nil
}

func (m *memLog) headLocked(op string) Head {
	h := Head{First: 1}
	for _, e := range m.logs[op] {
		h.Chain = chainNext(h.Chain, e)
		h.Last++
	}
	return h
}

func (m *memLog) Head(op string) Head {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.headLocked(op)
}

func (m *memLog) Retained(string, uint64, uint64, int) ([]RetainedEntry, error) {
	return nil, nil
}

func (m *memLog) RetainedCount(string, uint64, uint64) (int, error) { return 0, nil }

func (m *memLog) Watch(fn func([]Batch)) func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = append(m.watchers, fn)
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.watchers = nil
	}
}

func (m *memLog) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

func newTestServer(t *testing.T, cfg Config) (*Server, *memLog, *httptest.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l := newMemLog()
	s := New(l, cfg)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, l, hs
}

func TestHealthAndReadiness(t *testing.T) {
	_, l, hs := newTestServer(t, Config{NodeID: "n1"})
	get := func(path string) (int, string) {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	l.mu.Lock()
	l.ready = errors.New("no leader")
	l.mu.Unlock()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader") {
		t.Fatalf("readyz while not ready: %d %q", code, body)
	}
}

func TestOriginAllowList(t *testing.T) {
	_, _, hs := newTestServer(t, Config{NodeID: "n1", AllowedOrigins: []string{"https://centre.example"}})
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	host := strings.TrimPrefix(hs.URL, "http://")
	for origin, ok := range map[string]bool{
		"":                       true,
		"https://centre.example": true,
		"http://" + host:         true,
		"https://evil.example":   false,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(url, h)
		if ok != (err == nil) {
			t.Errorf("origin %q: accepted=%v, want %v", origin, err == nil, ok)
		}
		if ws != nil {
			ws.Close()
		}
		if !ok && resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: status %d, want 403", origin, resp.StatusCode)
		}
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	s, _, hs := newTestServer(t, Config{NodeID: "n1"})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := relaytest.Handshake(ws, nil); err != nil {
		t.Fatal(err)
	}
	go s.Close()
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("want close 1001, got %v", err)
	}
}

func TestDeliverFramesSplitUnderLimits(t *testing.T) {
	env := make([]byte, 200<<10)
	envs := [][]byte{env, env, env, env, env, env, env}
	frames, err := deliverFrames("op", 10, [HashLen]byte{}, envs, []uint8{0, 0, 1, 0, 0, 0, 0}, nil, deliverTarget, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) < 2 {
		t.Fatalf("%d frames for 1.4 MB", len(frames))
	}
	next := uint64(10)
	var chain [HashLen]byte
	for _, of := range frames {
		b := of.b
		if len(b) > deliverTarget {
			t.Fatalf("frame of %d bytes", len(b))
		}
		f, err := wire.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		d := f.(*wire.Deliver)
		if d.Seq != next || string(d.Prev) != string(chain[:]) {
			t.Fatalf("frame at %d: seq or prev wrong", d.Seq)
		}
		for i := range d.Envelopes {
			if want := wire.Kind(map[bool]uint8{true: 1}[d.Seq+uint64(i) == 12]); d.KindOf(i) != want {
				t.Fatalf("entry %d: kind %v, want %v", d.Seq+uint64(i), d.KindOf(i), want)
			}
		}
		for _, e := range d.Envelopes {
			chain = chainNext(chain, e)
		}
		next += uint64(len(d.Envelopes))
		if of.last != next-1 || of.op != "op" {
			t.Fatalf("frame metadata %q %d, want op %d", of.op, of.last, next-1)
		}
	}
	if next != 17 {
		t.Fatalf("delivered up to %d", next-1)
	}
}
