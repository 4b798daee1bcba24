//go:build js

package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
	"time"

	"liaison/relay/wire"
)

// browserTransport is the transport of GOOS=js builds: the browser's
// WebSocket through syscall/js. The browser answers the relay's pings
// itself and does not show them, so an idle connection has no read
// deadline; a dead one is reported by the browser (close event).
//
// Callbacks from the browser must not block (they run on the event loop),
// so received messages are queued without bound; the relay's own
// per-connection limits bound what it sends ahead of acknowledgements.
type browserTransport struct {
	ws        js.Value
	listeners []listener

	mu       sync.Mutex
	queue    [][]byte
	textMsg  bool  // a text message arrived (a protocol error)
	err      error // set once, when the socket closed or failed
	signal   chan struct{}
	deadline time.Time
	idleOff  bool // set by OnPing: read deadlines no longer apply
	closed   chan struct{}
	once     sync.Once
}

// errBrowserClosed is the read error after the socket closed.
var errBrowserClosed = errors.New("clients: websocket closed")

// dialTransport opens a WebSocket to u with the browser's WebSocket.
func dialTransport(ctx context.Context, u string, _ *Options) (transport, error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.IsUndefined() {
		return nil, errors.New("clients: no WebSocket in this JavaScript environment")
	}
	var ws js.Value
	if err := jsTry(func() { ws = ctor.New(u) }); err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	ws.Set("binaryType", "arraybuffer")
	t := &browserTransport{ws: ws, signal: make(chan struct{}, 1), closed: make(chan struct{})}
	opened := make(chan struct{})
	var openOnce sync.Once
	t.on("open", func(js.Value) { openOnce.Do(func() { close(opened) }) })
	t.on("message", func(ev js.Value) {
		data := ev.Get("data")
		if data.Type() == js.TypeString {
			t.mu.Lock()
			t.textMsg = true
			t.mu.Unlock()
			t.wake()
			return
		}
		arr := js.Global().Get("Uint8Array").New(data)
		n := arr.Get("length").Int()
		if n > wire.MaxServerFrame {
			t.fail(fmt.Errorf("clients: frame of %d bytes exceeds the limit", n))
			return
		}
		b := make([]byte, n)
		js.CopyBytesToGo(b, arr)
		t.mu.Lock()
		t.queue = append(t.queue, b)
		t.mu.Unlock()
		t.wake()
	})
	t.on("close", func(ev js.Value) {
		t.fail(fmt.Errorf("%w (code %d)", errBrowserClosed, ev.Get("code").Int()))
	})
	t.on("error", func(js.Value) { t.fail(errBrowserClosed) })
	select {
	case <-opened:
		return t, nil
	case <-t.closed:
		t.Close()
		return nil, fmt.Errorf("dial %s: %w", u, t.error())
	case <-ctx.Done():
		t.Close()
		return nil, fmt.Errorf("dial %s: %w", u, ctx.Err())
	}
}

// jsTry runs f and turns a JavaScript exception into an error.
func jsTry(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// listener is an event listener installed on the socket.
type listener struct {
	event string
	fn    js.Func
}

func (t *browserTransport) on(event string, fn func(js.Value)) {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		fn(args[0])
		return nil
	})
	t.listeners = append(t.listeners, listener{event, f})
	t.ws.Call("addEventListener", event, f)
}

func (t *browserTransport) wake() {
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

func (t *browserTransport) fail(err error) {
	t.once.Do(func() {
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		close(t.closed)
	})
	t.wake()
}

func (t *browserTransport) error() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *browserTransport) ReadMessage() (bool, []byte, error) {
	for {
		t.mu.Lock()
		if t.textMsg {
			t.mu.Unlock()
			return false, nil, nil
		}
		if len(t.queue) > 0 {
			b := t.queue[0]
			t.queue[0] = nil
			t.queue = t.queue[1:]
			t.mu.Unlock()
			return true, b, nil
		}
		if t.err != nil {
			err := t.err
			t.mu.Unlock()
			return false, nil, err
		}
		deadline := t.deadline
		t.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return false, nil, errors.New("clients: read deadline exceeded")
			}
			tm := time.NewTimer(d)
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case <-t.signal:
		case <-timeout:
		}
	}
}

// WriteMessages sends each of bs in order.
func (t *browserTransport) WriteMessages(bs [][]byte, deadline time.Time) error {
	for _, b := range bs {
		if err := t.WriteMessage(b, deadline); err != nil {
			return err
		}
	}
	return nil
}

func (t *browserTransport) WriteMessage(b []byte, _ time.Time) error {
	if err := t.error(); err != nil {
		return err
	}
	arr := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(arr, b)
	if err := jsTry(func() { t.ws.Call("send", arr) }); err != nil {
		t.Close()
		return fmt.Errorf("clients: websocket send: %w", err)
	}
	return nil
}

// SetReadDeadline bounds reads during the handshake; once OnPing was
// called (the client's reader starts with it) deadlines are ignored.
func (t *browserTransport) SetReadDeadline(d time.Time) {
	t.mu.Lock()
	if !t.idleOff {
		t.deadline = d
	}
	t.mu.Unlock()
	t.wake()
}

// OnPing disables idle deadlines: the browser answers pings without telling
// the page, so an idle but healthy connection would otherwise time out.
func (t *browserTransport) OnPing(func()) {
	t.mu.Lock()
	t.idleOff, t.deadline = true, time.Time{}
	t.mu.Unlock()
}

func (t *browserTransport) Close() error {
	t.fail(errBrowserClosed)
	jsTry(func() { t.ws.Call("close", 1000) })
	t.mu.Lock()
	ls := t.listeners
	t.listeners = nil
	t.mu.Unlock()
	for _, l := range ls {
		t.ws.Call("removeEventListener", l.event, l.fn)
		l.fn.Release()
	}
	return nil
}

// ChannelBinding returns nil: browsers do not expose TLS keying material.
func (t *browserTransport) ChannelBinding() []byte { return nil }
