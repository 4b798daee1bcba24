package relay

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"liaison/clients"
	"liaison/crypto"
)

// sliceLog is a read-only Log over a fixed slice of entries of one
// operation, with every chain hash precomputed, for read benchmarks.
type sliceLog struct {
	op     string
	envs   [][]byte
	chains [][HashLen]byte // chains[i] is the chain hash of entry i (0: none)
}

func newSliceLog(op string, n, size int) *sliceLog {
	l := &sliceLog{op: op, envs: make([][]byte, n), chains: make([][HashLen]byte, n+1)}
	for i := range l.envs {
		e := make([]byte, size)
		e[0], e[1], e[2] = byte(i), byte(i>>8), byte(i>>16)
		l.envs[i] = e
		l.chains[i+1] = chainNext(l.chains[i], e)
	}
	return l
}

func (l *sliceLog) Submit(_ Publish, done func(Result, error)) { done(Result{}, ErrInvalid) }

func (l *sliceLog) Read(op string, from uint64, maxCount, maxBytes int) (Batch, error) {
	b := Batch{Op: op, Seq: from}
	if op != l.op || from > uint64(len(l.envs)) {
		return b, nil
	}
	b.Prev = l.chains[from-1]
	size := 0
	for i := from - 1; i < uint64(len(l.envs)) && len(b.Envelopes) < maxCount; i++ {
		if len(b.Envelopes) > 0 && size+len(l.envs[i]) > maxBytes {
			break
		}
		// A copy, as a store read returns.
		b.Envelopes = append(b.Envelopes, append([]byte(nil), l.envs[i]...))
		size += len(l.envs[i])
	}
	return b, nil
}

func (l *sliceLog) Head(op string) Head {
	if op != l.op {
		return Head{First: 1}
	}
	return Head{First: 1, Last: uint64(len(l.envs)), Chain: l.chains[len(l.envs)]}
}

func (l *sliceLog) Retained(string, uint64, uint64, int) ([]RetainedEntry, error) { return nil, nil }
func (l *sliceLog) RetainedCount(string, uint64, uint64) (int, error)             { return 0, nil }
func (l *sliceLog) Watch(func([]Batch)) func()                                    { return func() {} }
func (l *sliceLog) Ready() error                                                  { return nil }
func (l *sliceLog) Roster(string) *crypto.Roster                                  { return nil }

// BenchmarkCatchup measures a client library subscriber reading a stored
// log of 512 B entries from the first, over an authenticated WebSocket on
// loopback (b.N entries).
func BenchmarkCatchup(b *testing.B) {
	const op = "catchup"
	l := newSliceLog(op, b.N, 512)
	s := New(l, Config{NodeID: "n1", OpenOps: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler()}
	go hs.Serve(BatchListener(ln))
	defer func() {
		s.Close()
		hs.Close()
	}()
	ctx := context.Background()
	c, err := clients.Dial(ctx, []string{ln.Addr().String()}, clients.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(512)
	cpu0 := cpuTime()
	b.ResetTimer()
	sub, err := c.Subscribe(ctx, op, 1)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for m := range sub.Messages() {
		n++
		if m.Seq == uint64(b.N) {
			break
		}
	}
	b.StopTimer()
	// CPU time of both sides, which matters more than the wall time on
	// a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if n != b.N {
		b.Fatalf("got %d of %d", n, b.N)
	}
}

// cpuTime returns the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
