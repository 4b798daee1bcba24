package cluster

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkPublish measures publish-to-commit throughput on one node
// (fsync on, real raft and bbolt) with P concurrent publishers and 1 KiB
// envelopes, and reports how many publishes shared a Raft entry.
//
//	go test -run '^$' -bench 'BenchmarkPublish$' -benchtime 20000x ./cluster
func BenchmarkPublish(b *testing.B) {
	for _, p := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishers=%d", p), func(b *testing.B) {
			n := openNode(b, b.TempDir())
			defer n.Close()
			benchPublishers(b, []*Node{n}, n, p)
		})
	}
}

// BenchmarkClusterPublish measures publish-to-ack throughput on an
// in-process three-node cluster (real raft over loopback TCP, the Raft log
// fsynced on every node) with publishers spread over all nodes, so
// followers forward to the leader and everything shares the leader's group
// commit; with the default MaxInflight (8) and with 1.
//
//	go test -run '^$' -bench ClusterPublish -benchtime 6000x ./cluster
func BenchmarkClusterPublish(b *testing.B) {
	for _, inflight := range []int{8, 1} {
		for _, p := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("inflight=%d/publishers=%d", inflight, p), func(b *testing.B) {
				nodes := openClusterB(b, 3, func(c *Config) { c.MaxInflight = inflight })
				var leader *Node
				for _, n := range nodes {
					if n.Status().State == "Leader" {
						leader = n
					}
				}
				benchPublishers(b, nodes, leader, p)
			})
		}
	}
}

// benchPublishers runs p publishers of 1 KiB envelopes spread over nodes
// for b.N publishes in all, and reports messages/s and the messages per
// Raft entry the leader built.
func benchPublishers(b *testing.B, nodes []*Node, leader *Node, p int) {
	env := bytes.Repeat([]byte{0xab}, 1024)
	start := leader.Status()
	per := (b.N + p - 1) / p
	b.SetBytes(int64(len(env)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < p; w++ {
		n := nodes[w%len(nodes)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := n.Publish(context.Background(), Publish{Op: "bench", MsgID: msgID(b), Envelope: env}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	end := leader.Status()
	b.ReportMetric(float64(per*p)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(end.Messages-start.Messages)/float64(max(end.Entries-start.Entries, 1)), "msgs/entry")
}
