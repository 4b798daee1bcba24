package cluster

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkClusterLatency measures one publisher at a time on an in-process
// three-node cluster (real raft over loopback TCP, the Raft log fsynced on
// every node, the FSM's file not: the default FSMSync): the ack latency of
// a publish through the leader and through a follower, and the time from a
// publish on the leader until a follower announces it to its watchers (what
// a subscriber there waits for). It reports p50 and p99, with the default
// CommitTimeout (1 ms) and with 5 ms, the default before.
func BenchmarkClusterLatency(b *testing.B) {
	for _, ct := range []time.Duration{time.Millisecond, 5 * time.Millisecond} {
		b.Run(fmt.Sprintf("commit_timeout=%v", ct), func(b *testing.B) {
			benchLatency(b, func(c *Config) { c.CommitTimeout = ct })
		})
	}
}

func benchLatency(b *testing.B, opt func(*Config)) {
	nodes := openClusterB(b, 3, opt)
	var leader, follower *Node
	for _, n := range nodes {
		if n.Status().State == "Leader" {
			leader = n
		} else if follower == nil {
			follower = n
		}
	}
	env := bytes.Repeat([]byte{0xab}, 256)
	b.Run("ack/leader", func(b *testing.B) { benchAck(b, leader, env) })
	b.Run("ack/follower", func(b *testing.B) { benchAck(b, follower, env) })
	b.Run("delivery/follower", func(b *testing.B) {
		var mu sync.Mutex
		seen := make(map[uint64]time.Time)
		cancel := follower.Watch(func(bs []Batch) {
			now := time.Now()
			mu.Lock()
			for _, bt := range bs {
				if bt.Op == "lat" {
					for i := range bt.Envelopes {
						seen[bt.Seq+uint64(i)] = now
					}
				}
			}
			mu.Unlock()
		})
		defer cancel()
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			res, err := leader.Publish(context.Background(), Publish{Op: "lat", MsgID: msgID(b), Envelope: env})
			if err != nil {
				b.Fatal(err)
			}
			for {
				mu.Lock()
				at, ok := seen[res.Seq]
				mu.Unlock()
				if ok {
					lat = append(lat, at.Sub(start))
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		reportPercentiles(b, lat)
	})
}

func benchAck(b *testing.B, n *Node, env []byte) {
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := n.Publish(context.Background(), Publish{Op: "lat", MsgID: msgID(b), Envelope: env}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(at(0.5), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
