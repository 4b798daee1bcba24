package relay

import (
	"bytes"
	"testing"

	"liaison/relay/wire"
)

// announceBatch appends envs to op's log and announces them as one
// committed batch, as a Raft apply of many entries does.
func (m *memLog) announceBatch(op string, envs [][]byte) {
	m.mu.Lock()
	h := m.headLocked(op)
	m.logs[op] = append(m.logs[op], envs...)
	ws := m.watchers
	m.mu.Unlock()
	for _, w := range ws {
		w([]Batch{{Op: op, Seq: h.Last + 1, Prev: h.Chain, Envelopes: envs}})
	}
}

// A committed batch bigger than a live subscriber's queue is not all sent
// to the log: the subscriber takes the batch's shared frames that fit (each
// at most a quarter of the queue), then reads the rest from the log, and
// receives every entry once, in order, with a valid chain.
func TestLiveBatchLargerThanQueue(t *testing.T) {
	const (
		op      = "big"
		queue   = 64 << 10
		entries = 40
		size    = 4 << 10
	)
	s, l, hs := newTestServer(t, Config{NodeID: "n1", OpenOps: true, QueueBytes: queue, ReadBatch: 8})
	if got := liveTarget(queue); got != 16<<10 {
		t.Fatalf("liveTarget(%d) = %d, want 16 KiB", queue, got)
	}
	c := dialRaw(t, hs.URL, nil)
	c.write(&wire.Subscribe{Req: 1, Op: op, From: 1})
	c.readUntil(func(f wire.Frame) bool { _, ok := f.(*wire.Subscribed); return ok })
	// The subscription goes live once its puller finds the log empty.
	awaitCond(t, "the subscription to go live", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for cn := range s.conns {
			cn.mu.Lock()
			sub := cn.subs[op]
			live := sub != nil && sub.live
			cn.mu.Unlock()
			if live {
				return true
			}
		}
		return false
	})

	envs := make([][]byte, entries)
	for i := range envs {
		envs[i] = bytes.Repeat([]byte{byte(i + 1)}, size)
	}
	l.announceBatch(op, envs)

	var chain [HashLen]byte
	next := uint64(1)
	first := true
	for next <= entries {
		d, ok := c.read().(*wire.Deliver)
		if !ok {
			continue
		}
		if first {
			// A shared live frame: 3 entries of 4 KiB fit in 16 KiB.
			if d.Seq != 1 || len(d.Envelopes) != 3 {
				t.Fatalf("first frame: seq %d with %d entries, want the batch's first live frame (seq 1, 3 entries)", d.Seq, len(d.Envelopes))
			}
			first = false
		}
		if d.Seq != next || !bytes.Equal(d.Prev, chain[:]) {
			t.Fatalf("frame at %d (want %d) or its prev does not continue the chain", d.Seq, next)
		}
		for i, e := range d.Envelopes {
			if !bytes.Equal(e, envs[next-1]) {
				t.Fatalf("entry %d differs", next)
			}
			chain = wire.ChainNext(chain, d.Envelopes[i])
			next++
		}
	}
	if got := s.stats.lagged.Load(); got != 1 {
		t.Fatalf("lagged %d times, want once (the batch's tail read from the log)", got)
	}
}
