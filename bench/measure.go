package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// figure is one measured number; results.json holds a list of them.
type figure struct {
	System       string  `json:"system"`
	Metric       string  `json:"metric"`
	PayloadBytes int     `json:"payload_bytes,omitempty"`
	Publishers   int     `json:"publishers,omitempty"`
	OfferedRate  int     `json:"offered_rate,omitempty"`
	Subscribers  int     `json:"subscribers,omitempty"`
	Connections  int     `json:"connections,omitempty"`
	Messages     int     `json:"messages,omitempty"`
	Value        float64 `json:"value"`
	Unit         string  `json:"unit"`
	Note         string  `json:"note,omitempty"`
}

// Metric names.
const (
	mThroughput = "publish_throughput"
	mLatP50     = "latency_p50"
	mLatP99     = "latency_p99"
	mLatP999    = "latency_p999"
	mDelivered  = "latency_delivered_rate"
	mCatchup    = "catchup_rate"
	mIdle       = "idle_conn_memory"
	mFanout     = "fanout_deliveries"
	mFieldSecs  = "field_seconds"
	mFieldFloor = "field_floor_seconds"
	mFieldUtil  = "field_link_utilisation"
	mFieldBytes = "field_wire_bytes_per_msg"
	mFieldDown  = "field_down_bytes_per_msg"
)

// clock stamps payloads: the first 8 bytes carry nanoseconds since base.
var base = time.Now()

func stamp(b []byte) { binary.BigEndian.PutUint64(b, uint64(time.Since(base))) }

// parallel runs f(i) for i in [0, n) on k workers; it stops at the first
// error and returns it.
func parallel(ctx context.Context, n, k int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(k, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// measureThroughput runs p publishers, one connection each, spread over the
// nodes, each publishing and awaiting its ack in a loop for d; it returns
// acked messages per second.
func measureThroughput(ctx context.Context, sys system, payload, p int, d time.Duration) (float64, error) {
	stream := fmt.Sprintf("tp-%d-%d", payload, p)
	if err := sys.createStream(ctx, stream); err != nil {
		return 0, err
	}
	pubs := make([]publisher, p)
	defer func() {
		for _, pb := range pubs {
			if pb != nil {
				pb.Close()
			}
		}
	}()
	if err := parallel(ctx, p, 16, func(ctx context.Context, i int) error {
		var err error
		pubs[i], err = sys.publisher(ctx, i%3, stream)
		return err
	}); err != nil {
		return 0, err
	}
	msg := make([]byte, payload)
	var acked atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p)
	start := time.Now()
	stop := start.Add(d)
	for _, pb := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := pb.publish(ctx, msg); err != nil {
					errc <- err
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(acked.Load()) / elapsed.Seconds(), nil
}

// latencyResult is one offered load's publish-to-delivery latencies.
type latencyResult struct {
	p50, p99, p999 time.Duration
	delivered      float64 // messages/s actually delivered
	missing        int     // messages not delivered within the wait
}

// latencyWait bounds the wait for the last deliveries of a latency point
// after the offered load stops.
const latencyWait = 20 * time.Second

// measureLatency publishes at rate messages/s for d from node 0 (open loop:
// the schedule does not wait for acks) and measures, on a subscriber on
// node 1, the time from publish to delivery of every message sent after the
// first tenth of d. A system that falls behind gets latencyWait to deliver
// the rest; messages still missing then count with the time they waited, so
// its percentiles are lower bounds (missing > 0).
func measureLatency(ctx context.Context, sys system, payload, rate int, d time.Duration) (latencyResult, error) {
	stream := fmt.Sprintf("lat-%d-%d", payload, rate)
	if err := sys.createStream(ctx, stream); err != nil {
		return latencyResult{}, err
	}
	total := int(float64(rate) * d.Seconds())
	warm := total / 10
	sentAt := make([]time.Duration, total)
	var mu sync.Mutex
	lat := make([]time.Duration, total) // 0: not delivered
	var got atomic.Int64
	all := make(chan struct{})
	var firstAt, lastAt atomic.Int64
	sub, err := sys.subscribe(ctx, 1, stream, func(b []byte) {
		if len(b) < 16 {
			return
		}
		now := time.Since(base)
		i := int(binary.BigEndian.Uint64(b[8:]))
		mu.Lock()
		if i < total && lat[i] == 0 {
			lat[i] = max(now-time.Duration(binary.BigEndian.Uint64(b)), 1)
		}
		mu.Unlock()
		n := got.Add(1)
		if n == 1 {
			firstAt.Store(int64(now))
		}
		if int(n) == total {
			lastAt.Store(int64(now))
			close(all)
		}
	})
	if err != nil {
		return latencyResult{}, err
	}
	defer sub.Close()
	pub, err := sys.publisher(ctx, 0, stream)
	if err != nil {
		return latencyResult{}, err
	}
	defer pub.Close()
	var failed atomic.Pointer[error]
	done := func(err error) {
		if err != nil && ctx.Err() == nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	sent := 0
	for sent < total {
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; sent < due; sent++ {
			b := make([]byte, max(payload, 16))[:payload]
			stamp(b)
			binary.BigEndian.PutUint64(b[8:], uint64(sent))
			sentAt[sent] = time.Duration(binary.BigEndian.Uint64(b))
			pub.publishAsync(ctx, b, done)
		}
		if e := failed.Load(); e != nil {
			return latencyResult{}, *e
		}
		time.Sleep(200 * time.Microsecond)
	}
	select {
	case <-all:
	case <-time.After(latencyWait):
	case <-ctx.Done():
		return latencyResult{}, ctx.Err()
	}
	if e := failed.Load(); e != nil {
		return latencyResult{}, *e
	}
	now := time.Since(base)
	var r latencyResult
	lats := make([]time.Duration, 0, total-warm)
	mu.Lock()
	for i := warm; i < total; i++ {
		l := lat[i]
		if l == 0 {
			r.missing++
			l = now - sentAt[i]
		}
		lats = append(lats, l)
	}
	mu.Unlock()
	slices.Sort(lats)
	pct := func(q float64) time.Duration { return lats[min(len(lats)-1, int(q*float64(len(lats))))] }
	r.p50, r.p99, r.p999 = pct(0.50), pct(0.99), pct(0.999)
	end := lastAt.Load()
	if end == 0 {
		end = int64(now)
	}
	if span := time.Duration(end - firstAt.Load()).Seconds(); span > 0 {
		r.delivered = float64(got.Load()-1) / span
	}
	return r, nil
}

// pump publishes n payloads through pubs (round robin) with at most window
// acks outstanding, and waits for all of them.
func pump(ctx context.Context, pubs []publisher, n, window int, payload func(i int) []byte) error {
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	done := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
		<-sem
		wg.Done()
	}
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if e := failed.Load(); e != nil {
			return *e
		}
		wg.Add(1)
		pubs[i%len(pubs)].publishAsync(ctx, payload(i), done)
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return *e
	}
	return nil
}

// measureCatchup stores n 512 B messages, then times a subscriber on node 1
// (a follower for Liaison) reading them all from the first. reading is
// called when the reading starts; what it returns when it ends.
func measureCatchup(ctx context.Context, sys system, n int, logf func(string, ...any), reading func() func()) (float64, error) {
	const stream = "catchup"
	if err := sys.createStream(ctx, stream); err != nil {
		return 0, err
	}
	var pubs []publisher
	defer func() {
		for _, p := range pubs {
			p.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		p, err := sys.publisher(ctx, 0, stream)
		if err != nil {
			return 0, err
		}
		pubs = append(pubs, p)
	}
	msg := make([]byte, 512)
	t0 := time.Now()
	if err := pump(ctx, pubs, n, 2048, func(int) []byte { return msg }); err != nil {
		return 0, fmt.Errorf("storing %d messages: %w", n, err)
	}
	logf("stored", "messages", n, "took", time.Since(t0).Round(time.Millisecond))
	var got atomic.Int64
	all := make(chan struct{})
	stop := reading()
	defer stop()
	start := time.Now()
	sub, err := sys.subscribe(ctx, 1, stream, func([]byte) {
		if got.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("catch-up: read %d of %d", got.Load(), n)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// measureIdle opens n idle authenticated WebSocket connections to node 0 and
// returns the growth of its resident set per connection, in bytes.
func measureIdle(ctx context.Context, sys system, n int, inspect func(stage string)) (float64, error) {
	pid := sys.pid(0)
	// Warm the listener up with a few connections first, so that
	// one-off allocations are not charged to the measured ones.
	warm, err := sys.idleConns(ctx, 0, 50)
	if err != nil {
		return 0, err
	}
	warm.Close()
	before, err := settledRSS(ctx, pid)
	if err != nil {
		return 0, err
	}
	inspect("before")
	conns, err := sys.idleConns(ctx, 0, n)
	if err != nil {
		return 0, err
	}
	defer conns.Close()
	after, err := settledRSS(ctx, pid)
	if err != nil {
		return 0, err
	}
	inspect("after")
	return float64(after-before) / float64(n), nil
}

// settledRSS waits until the process's RSS stops changing by more than 1%
// over half a second (at most 10 s) and returns it.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	prev, err := rssBytes(pid)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 20; i++ {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		cur, err := rssBytes(pid)
		if err != nil {
			return 0, err
		}
		if d := cur - prev; d < cur/100 && -d < cur/100 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// fanoutStream names the stream of a fan-out figure.
func fanoutStream(payload, subs int) string { return fmt.Sprintf("fan-%d-%d", payload, subs) }

// measureFanout connects subs subscribers (one connection each) spread over
// the nodes, publishes msgs messages from node 0 and returns deliveries per
// second, from the first publish to the last delivery.
func measureFanout(ctx context.Context, sys system, payload, subs, msgs int) (float64, error) {
	stream := fanoutStream(payload, subs)
	if err := sys.createStream(ctx, stream); err != nil {
		return 0, err
	}
	want := int64(subs * msgs)
	var got atomic.Int64
	all := make(chan struct{})
	closers := make([]closer, subs)
	defer func() {
		_ = parallel(context.Background(), subs, 32, func(_ context.Context, i int) error {
			if closers[i] != nil {
				closers[i].Close()
			}
			return nil
		})
	}()
	if err := parallel(ctx, subs, 16, func(ctx context.Context, i int) error {
		var err error
		closers[i], err = sys.subscribe(ctx, i%3, stream, func([]byte) {
			if got.Add(1) == want {
				close(all)
			}
		})
		return err
	}); err != nil {
		return 0, err
	}
	pub, err := sys.publisher(ctx, 0, stream)
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	msg := make([]byte, payload)
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := pump(pctx, []publisher{pub}, msgs, 256, func(int) []byte { return msg }); err != nil {
		return 0, fmt.Errorf("publishing: %w", err)
	}
	select {
	case <-all:
	case <-pctx.Done():
		return 0, fmt.Errorf("fan-out: %d of %d deliveries in 5 minutes", got.Load(), want)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(want) / time.Since(start).Seconds(), nil
}
