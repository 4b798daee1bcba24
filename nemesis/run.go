package nemesis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"liaison/clients"
)

// Config describes one nemesis run.
type Config struct {
	// Dir holds the nodes' data and logs.
	Dir string
	// Nodes is the cluster size (3 or 5).
	Nodes int
	// Duration is how long faults are injected while the workload runs.
	Duration time.Duration
	// Ops are the operations published to; default four.
	Ops []string
	// Publishers and Subscribers are the workload's clients.
	Publishers, Subscribers int
	// PublishPause is the most a publisher waits between two publishes
	// (a random part of it), to bound the history's size.
	PublishPause time.Duration
	// FaultGap and FaultHold bound the quiet time between faults and how
	// long a fault lasts (each drawn at random up to the bound).
	FaultGap, FaultHold time.Duration
	// Kinds restricts the faults; nil: all of them.
	Kinds []string
	// Seed makes the fault schedule reproducible (the timing is not).
	Seed uint64
	// LinearizabilityTimeout bounds porcupine per operation.
	LinearizabilityTimeout time.Duration
	// Log receives the harness's progress; nil discards it.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if len(c.Ops) == 0 {
		c.Ops = []string{"op-a", "op-b", "op-c", "op-d"}
	}
	if c.Publishers == 0 {
		c.Publishers = 8
	}
	if c.Subscribers == 0 {
		c.Subscribers = 6
	}
	if c.FaultGap == 0 {
		c.FaultGap = 2 * time.Second
	}
	if c.FaultHold == 0 {
		c.FaultHold = 4 * time.Second
	}
	if c.LinearizabilityTimeout == 0 {
		c.LinearizabilityTimeout = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return c
}

// Result is what a run produced.
type Result struct {
	Config  Config
	History History
	Report  *Report
	Elapsed time.Duration
}

func clientOptions() clients.Options {
	return clients.Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		DialTimeout:  3 * time.Second,
		WriteTimeout: 5 * time.Second,
		IdleTimeout:  10 * time.Second,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
		MaxInFlight:  64,
	}
}

func shuffled(rng *rand.Rand, addrs []string) []string {
	out := append([]string(nil), addrs...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Run starts a cluster, runs the workload under faults for cfg.Duration,
// heals everything, reads every node's final log and checks the history.
// An error means the harness itself could not do its job (the cluster did
// not start or never recovered); anomalies are in the Report.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	for _, k := range cfg.Kinds {
		if !knownFault(k) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownFault, k)
		}
	}
	log := cfg.Log
	started := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6e656d65))
	log.Info("nemesis: starting cluster", "nodes", cfg.Nodes, "seed", cfg.Seed, "dir", cfg.Dir)
	c, err := StartCluster(ctx, cfg.Dir, cfg.Nodes, log)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rec := newRecorder()
	rec.onHeal = func(f Fault, healed time.Duration, err error) {
		if err != nil {
			log.Warn("nemesis: fault not fully applied or healed", "kind", f.Kind, "target", f.Target, "took", (healed - f.At).Round(time.Millisecond), "err", err)
		} else {
			log.Info("nemesis: healed", "kind", f.Kind, "target", f.Target, "took", (healed - f.At).Round(time.Millisecond))
		}
	}
	res := &Result{Config: cfg}

	// Status poller.
	pollCtx, stopPoll := context.WithCancel(ctx)
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() {
		defer pollWG.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			for _, n := range c.Nodes {
				if !n.Running() || n.Paused() {
					continue
				}
				st, err := n.Status(pollCtx)
				if err == nil {
					rec.status(StatusObservation{At: rec.now(), Node: st.Node.NodeID, State: st.Node.State, Term: st.Node.Term, LeaderID: st.Node.LeaderID})
				}
			}
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { stopPoll(); pollWG.Wait() }()

	// Subscribers: half from the start, the others joining during the run
	// (so they catch up from 1 while faults happen).
	subs := make([]*subscriber, cfg.Subscribers)
	var subWG sync.WaitGroup
	for i := range subs {
		s := &subscriber{id: i, op: cfg.Ops[i%len(cfg.Ops)], addrs: shuffled(rng, c.ClientAddrs()), rec: rec, stop: make(chan struct{})}
		s.r = SubscriberRecord{ID: i, Op: s.op, From: 1}
		subs[i] = s
		delay := time.Duration(0)
		if i >= cfg.Subscribers/2 {
			delay = time.Duration(rng.Int64N(int64(cfg.Duration/2) + 1))
		}
		subWG.Add(1)
		go func() { defer subWG.Done(); s.run(ctx, delay) }()
	}

	// Publishers.
	stopPub := make(chan struct{})
	var pubWG sync.WaitGroup
	for i := range cfg.Publishers {
		addrs := shuffled(rng, c.ClientAddrs())
		seed := rng.Uint64()
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			publisher(ctx, i, addrs, cfg, seed, rec, stopPub)
		}()
	}

	// Faults.
	nm := &nemesis{c: c, rec: rec, rng: rand.New(rand.NewPCG(rng.Uint64(), 1))}
	if cfg.Kinds != nil {
		nm.kinds = make(map[string]bool)
		for _, k := range cfg.Kinds {
			nm.kinds[k] = true
		}
	}
	deadline := time.Now().Add(cfg.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		gap := time.Duration(rng.Int64N(int64(cfg.FaultGap))) + 500*time.Millisecond
		t := time.NewTimer(gap)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		if err := nm.repair(); err != nil {
			log.Warn("nemesis: repair", "err", err)
		}
		kind := nm.pick()
		hold := time.Duration(rng.Int64N(int64(cfg.FaultHold))) + 500*time.Millisecond
		nm.inject(ctx, kind, hold)
	}

	// Heal everything and let the workload run on a healthy cluster for a
	// moment, so that publishes pending across the last fault complete.
	log.Info("nemesis: healing")
	if err := nm.repair(); err != nil {
		log.Warn("nemesis: repair", "err", err)
	}
	if err := nm.rejoinMissing(ctx); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = c.WaitHealthy(hctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("after healing: %w", err)
	}
	quiet := time.NewTimer(3 * time.Second)
	select {
	case <-quiet.C:
	case <-ctx.Done():
	}
	close(stopPub)
	pubWG.Wait()
	hctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	err = c.WaitHealthy(hctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("after the workload: %w", err)
	}

	// Final logs from every node, read directly.
	heads := make(map[string]uint64)
	for _, n := range c.Nodes {
		logs, err := readLogs(ctx, n, cfg.Ops)
		if err != nil {
			return nil, err
		}
		rec.mu.Lock()
		rec.h.Logs[n.ID] = logs
		rec.mu.Unlock()
		for op, l := range logs {
			heads[op] = max(heads[op], uint64(len(l)))
		}
	}
	// Subscribers read to the final head, then stop.
	for _, s := range subs {
		s.finish(ctx, heads[s.op])
	}
	subWG.Wait()
	for _, s := range subs {
		rec.subscriber(s.record())
	}
	stopPoll()
	pollWG.Wait()

	h := rec.history()
	for _, n := range c.Nodes {
		h.Crashes = append(h.Crashes, n.Crashes()...)
		el, bad, err := scanLog(n)
		if err != nil {
			return nil, err
		}
		h.Elections = append(h.Elections, el...)
		h.Crashes = append(h.Crashes, bad...)
	}
	res.History = h
	res.Elapsed = time.Since(started)
	log.Info("nemesis: checking", "publishes", len(h.Publishes))
	res.Report = Check(h, CheckOptions{LinearizabilityTimeout: cfg.LinearizabilityTimeout})
	return res, nil
}

// rejoinMissing adds back any node a failed membership fault left out of
// the configuration, and restarts it.
func (m *nemesis) rejoinMissing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var members map[string]bool
	err := waitFor(ctx, func() bool {
		l, err := m.c.Leader(ctx)
		if err != nil {
			return false
		}
		st, err := l.Status(ctx)
		if err != nil {
			return false
		}
		members = make(map[string]bool)
		for _, s := range st.Servers {
			members[s.ID] = true
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("no leader after healing: %w", err)
	}
	for _, n := range m.c.Nodes {
		if members[n.ID] {
			continue
		}
		if err := m.readd(ctx, n); err != nil {
			return fmt.Errorf("re-adding %s: %w", n.ID, err)
		}
	}
	return nil
}

// publisher publishes unique values to random operations until stop.
func publisher(ctx context.Context, id int, addrs []string, cfg Config, seed uint64, rec *recorder, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	var c *clients.Client
	for c == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		c, err = clients.Dial(dctx, addrs, clientOptions())
		cancel()
		if err != nil {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	defer c.Close()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		op := cfg.Ops[rng.IntN(len(cfg.Ops))]
		value := fmt.Sprintf("p%d-%d", id, n)
		p := PublishRecord{Client: id, Op: op, Value: value, Call: rec.now()}
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		r, err := c.Publish(pctx, op, []byte(value))
		cancel()
		p.Return = rec.now()
		switch {
		case err == nil:
			p.Outcome, p.Seq = Acked, r.Seq
		case errors.Is(err, clients.ErrUnknownOutcome):
			p.Outcome, p.Err = Unknown, err.Error()
		default:
			p.Outcome, p.Err = Failed, err.Error()
		}
		rec.publish(p)
		if cfg.PublishPause > 0 {
			t := time.NewTimer(time.Duration(rng.Int64N(int64(cfg.PublishPause))))
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
			}
		}
	}
}

// subscriber reads one operation from sequence 1 through random nodes.
type subscriber struct {
	id    int
	op    string
	addrs []string
	rec   *recorder

	mu   sync.Mutex
	r    SubscriberRecord
	stop chan struct{}
	want uint64 // the final head, once known
	once sync.Once
}

func (s *subscriber) run(ctx context.Context, delay time.Duration) {
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-s.stop:
		t.Stop()
		return
	}
	var c *clients.Client
	var sub *clients.Subscription
	for sub == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if c == nil {
			c, err = clients.Dial(dctx, s.addrs, clientOptions())
		}
		if err == nil {
			sub, err = c.Subscribe(dctx, s.op, 1)
		}
		cancel()
		if sub == nil {
			select {
			case <-s.stop:
				s.setErr("never subscribed: " + err.Error())
				if c != nil {
					c.Close()
				}
				return
			case <-ctx.Done():
				s.setErr(ctx.Err().Error())
				if c != nil {
					c.Close()
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	defer c.Close()
	for {
		select {
		case m, ok := <-sub.Messages():
			if !ok {
				if err := sub.Err(); err != nil && !errors.Is(err, clients.ErrClosed) {
					s.setErr(err.Error())
				}
				return
			}
			s.mu.Lock()
			s.r.Deliveries = append(s.r.Deliveries, Delivery{Seq: m.Seq, Value: string(m.Envelope), Chain: m.Chain, At: s.rec.now()})
			done := s.want > 0 && m.Seq >= s.want
			s.mu.Unlock()
			if done {
				return
			}
		case <-s.stop:
			return
		}
	}
}

func (s *subscriber) setErr(e string) {
	s.mu.Lock()
	s.r.Err = e
	s.mu.Unlock()
}

// finish tells the subscriber the final head and waits (bounded) for it to
// get there, then stops it.
func (s *subscriber) finish(ctx context.Context, head uint64) {
	s.mu.Lock()
	s.want = head
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	_ = waitFor(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := len(s.r.Deliveries)
		return head == 0 || (n > 0 && s.r.Deliveries[n-1].Seq >= head) || s.r.Err != ""
	})
	s.once.Do(func() { close(s.stop) })
}

func (s *subscriber) record() SubscriberRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

// readLogs reads every operation's whole log from one node, directly.
func readLogs(ctx context.Context, n *Node, ops []string) (map[string][]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := clients.Dial(ctx, []string{n.Listen}, clientOptions())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.ID, err)
	}
	defer c.Close()
	out := make(map[string][]Entry)
	for _, op := range ops {
		sub, err := c.Subscribe(ctx, op, 1)
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", op, n.ID, err)
		}
		head := sub.Head()
		l := make([]Entry, 0, head)
		for uint64(len(l)) < head {
			select {
			case m, ok := <-sub.Messages():
				if !ok {
					return nil, fmt.Errorf("read %s from %s: ended after %d of %d: %v", op, n.ID, len(l), head, sub.Err())
				}
				l = append(l, Entry{Seq: m.Seq, Value: string(m.Envelope), Chain: m.Chain})
			case <-ctx.Done():
				return nil, fmt.Errorf("read %s from %s: %d of %d: %w", op, n.ID, len(l), head, ctx.Err())
			}
		}
		sub.Close()
		out[op] = l
	}
	return out, nil
}

var electionRE = regexp.MustCompile(`msg="election won".* term=(\d+)`)

// scanLog reads a node's log file (every start) for "election won" lines
// and for data races and panics.
func scanLog(n *Node) ([]Election, []string, error) {
	f, err := os.Open(n.LogFile())
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var el []Election
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := electionRE.FindStringSubmatch(line); m != nil {
			t, _ := strconv.ParseUint(m[1], 10, 64)
			el = append(el, Election{Node: n.ID, Term: t})
		}
		if strings.Contains(line, "WARNING: DATA RACE") || strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			bad = append(bad, fmt.Sprintf("%s: %s (see %s)", n.ID, line, n.LogFile()))
		}
	}
	return el, bad, sc.Err()
}
