package tui

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

// Session is what the Engine needs of a person's session;
// *session.Session implements it.
type Session interface {
	Sync(ctx context.Context, op string) ([]session.Entry, error)
	FollowFrom(ctx context.Context, op string, from uint64, fn func(session.Entry)) error
	History(op string, from uint64) ([]session.Entry, error)
	Queue(op, text string, class wire.Class) (session.Queued, error)
	Outbox(op string) ([]session.Queued, error)
	Info(op string) (session.OpInfo, error)
	Members(op string) (*crypto.Roster, error)
	Identity() *crypto.Identity
	Tasks(op string, delivery session.Delivery) ([]session.TaskStatus, error)
	AckTask(ctx context.Context, op, task string, state session.AckState, note string) (session.SendResult, error)
	SendTask(ctx context.Context, op string, priority wire.Class, text string, o session.TaskOptions) (session.TaskResult, error)
	Presence(ctx context.Context, op string) (*clients.Presence, error)
}

// StatusSource reports the relay connection; *clients.Client implements it.
type StatusSource interface {
	Status() clients.Status
}

// EngineOptions configures an Engine. The zero value is usable.
type EngineOptions struct {
	// Logger receives the engine's events. Nil discards them.
	Logger *slog.Logger
	// StatusEvery is how often the connection state is polled. Default
	// 200ms.
	StatusEvery time.Duration
	// RetryMin and RetryMax bound the backoff after a failed sync or
	// follow. Defaults 500ms and 15s.
	RetryMin, RetryMax time.Duration
	// Backlog is how many entries of local history are shown at start.
	// Default 500.
	Backlog int
}

// Engine is the Backend of the Model over a Session: one pump per operation
// keeps the history current and sends the outbox. Its events are read from
// Events (the Model does it).
type Engine struct {
	s    Session
	st   StatusSource
	o    EngineOptions
	log  *slog.Logger
	self [32]byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	events chan tea.Msg
	emitMu sync.RWMutex
	closed bool // events is closed; under emitMu

	mu      sync.Mutex
	kicks   map[string]chan struct{}
	jobs    map[string][]job // per operation, run by its pump between follows
	started bool
	stopped bool // Close was called: start nothing more
}

// NewEngine returns an engine over s and the connection st. Call Start.
func NewEngine(s Session, st StatusSource, o EngineOptions) *Engine {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = 200 * time.Millisecond
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 500 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(o.RetryMin, 15*time.Second)
	}
	if o.Backlog <= 0 {
		o.Backlog = 500
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		s: s, st: st, o: o, log: o.Logger, self: s.Identity().PublicKey(),
		ctx: ctx, cancel: cancel,
		events: make(chan tea.Msg, 256),
		kicks:  make(map[string]chan struct{}),
		jobs:   make(map[string][]job),
	}
}

// Events returns the channel of events for the Model. It is closed by
// Close.
func (e *Engine) Events() <-chan tea.Msg { return e.events }

// Start starts the connection poller and a pump for each of ops.
func (e *Engine) Start(ops ...string) {
	e.mu.Lock()
	if !e.started && !e.stopped {
		e.started = true
		e.wg.Add(1)
		go e.pollStatus()
	}
	e.mu.Unlock()
	for _, op := range ops {
		e.add(op)
	}
}

// add starts op's pump unless it runs.
func (e *Engine) add(op string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k, ok := e.kicks[op]; ok {
		return k
	}
	k := make(chan struct{}, 1)
	e.kicks[op] = k
	if e.stopped {
		return k
	}
	e.wg.Add(1)
	go e.pump(op, k)
	return k
}

// kick makes op's pump sync now (it sends the outbox).
func (e *Engine) kick(op string) {
	k := e.add(op)
	select {
	case k <- struct{}{}:
	default:
	}
}

// job is work that needs op's log to itself (it syncs: a task's
// acknowledgement, a task), run by op's pump while it does not follow.
type job struct {
	fn   func(ctx context.Context) error
	done chan error // buffered
}

// do runs fn on op's pump and returns its error. It waits for the relay as
// long as fn does, and returns early if the engine closes.
func (e *Engine) do(op string, fn func(ctx context.Context) error) error {
	j := job{fn: fn, done: make(chan error, 1)}
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return errEngineClosed
	}
	e.jobs[op] = append(e.jobs[op], j)
	e.mu.Unlock()
	e.kick(op)
	select {
	case err := <-j.done:
		return err
	case <-e.ctx.Done():
		return errEngineClosed
	}
}

var errEngineClosed = errors.New("tui: the chat is closing")

// runJobs runs op's queued jobs in order.
func (e *Engine) runJobs(op string) {
	e.mu.Lock()
	jobs := e.jobs[op]
	delete(e.jobs, op)
	e.mu.Unlock()
	for _, j := range jobs {
		j.done <- j.fn(e.ctx)
	}
}

// Close stops the pumps and the poller and waits for them. Messages being
// sent stay in the session's state and are sent by the next run.
func (e *Engine) Close() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	e.emitMu.Lock()
	if !e.closed {
		e.closed = true
		close(e.events)
	}
	e.emitMu.Unlock()
}

// emit delivers an event to the model, unless the engine is closing.
func (e *Engine) emit(m tea.Msg) {
	e.emitMu.RLock()
	defer e.emitMu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.events <- m:
	case <-e.ctx.Done():
	}
}

// Warn is a session.Options.Warn sink: it shows the warning.
func (e *Engine) Warn(op, msg string) {
	e.emit(NoticeMsg{Op: op, Text: msg})
}

// Queue implements Backend: it saves the message in op's outbox and kicks
// op's pump to send it.
func (e *Engine) Queue(op, text string, class wire.Class) (session.Queued, error) {
	q, err := e.s.Queue(op, text, class)
	if err != nil {
		return q, err
	}
	e.kick(op)
	return q, nil
}

func (e *Engine) pollStatus() {
	defer e.wg.Done()
	t := time.NewTicker(e.o.StatusEvery)
	defer t.Stop()
	var last clients.Status
	first := true
	for {
		if st := e.st.Status(); first || st != last {
			first, last = false, st
			e.emit(ConnMsg(st))
		}
		select {
		case <-t.C:
		case <-e.ctx.Done():
			return
		}
	}
}

// pump keeps op current: local history first, then forever a sync (catch
// up, send the outbox) followed by following the log until a kick.
func (e *Engine) pump(op string, kick chan struct{}) {
	defer e.wg.Done()
	var last uint64 // the last sequence shown
	if hist, err := e.s.History(op, 1); err == nil {
		if len(hist) > e.o.Backlog {
			hist = hist[len(hist)-e.o.Backlog:]
		}
		if len(hist) > 0 {
			last = hist[len(hist)-1].Seq
		}
		e.emit(HistoryMsg{Op: op, Entries: hist, Backlog: true})
		e.emitState(op)
	} else if !errors.Is(err, session.ErrNoState) {
		e.emit(NoticeMsg{Op: op, Text: err.Error()})
	}
	attempt := 0
	for e.ctx.Err() == nil {
		select {
		case <-kick:
		default:
		}
		e.runJobs(op)
		_, err := e.s.Sync(e.ctx, op)
		if e.ctx.Err() != nil {
			return
		}
		// Everything processed since the last entry shown: by this sync,
		// by the jobs (which sync too), or by another process.
		if fresh, herr := e.s.History(op, last+1); herr == nil && len(fresh) > 0 {
			last = fresh[len(fresh)-1].Seq
			e.emit(HistoryMsg{Op: op, Entries: fresh})
		}
		e.emitState(op)
		if err != nil {
			e.log.Warn("sync failed", "op", op, "err", err)
			e.emit(NoticeMsg{Op: op, Text: "sync failed: " + err.Error()})
			e.wait(kick, attempt)
			attempt++
			continue
		}
		attempt = 0
		select {
		case <-kick:
			continue // more to send
		default:
		}
		err = e.follow(op, kick, &last)
		if err != nil && e.ctx.Err() == nil {
			e.log.Warn("follow failed", "op", op, "err", err)
			e.emit(NoticeMsg{Op: op, Text: "reading the log failed: " + err.Error()})
			e.wait(kick, attempt)
			attempt++
		}
	}
}

// follow follows op's log from the entry after the last shown (so entries
// another process handled meanwhile are shown too) until a kick, the
// engine's end or an error.
func (e *Engine) follow(op string, kick chan struct{}, last *uint64) error {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-kick:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := e.s.FollowFrom(ctx, op, *last+1, func(en session.Entry) {
		*last = max(*last, en.Seq)
		e.emit(HistoryMsg{Op: op, Entries: []session.Entry{en}})
		switch {
		case en.Kind == session.EntryCommit:
			e.emitState(op)
		case en.Type == session.TypeTask || en.Type == session.TypeAck:
			e.emitTasks(op)
		}
	})
	cancel()
	<-stopped
	return err
}

// wait backs off before the next attempt; a kick or the engine's end cuts
// it short.
func (e *Engine) wait(kick chan struct{}, attempt int) {
	d := e.o.RetryMin
	for i := 0; i < attempt && d < e.o.RetryMax; i++ {
		d *= 2
	}
	t := time.NewTimer(min(d, e.o.RetryMax))
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
	case <-e.ctx.Done():
	}
}

// emitState sends op's outbox and description.
func (e *Engine) emitState(op string) {
	if ob, err := e.s.Outbox(op); err == nil {
		e.emit(OutboxMsg{Op: op, Items: ob})
	}
	info, err := e.s.Info(op)
	if err != nil {
		return
	}
	msg := InfoMsg{Op: op, Info: info}
	if r, err := e.s.Members(op); err == nil {
		msg.Colleagues = session.Colleagues(r, e.self)
	}
	e.emit(msg)
	e.emitTasks(op)
}
