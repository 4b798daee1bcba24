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
func BenchmarkPublish(b *testing.B) {
	env := bytes.Repeat([]byte{0xab}, 1024)
	for _, p := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishers=%d", p), func(b *testing.B) {
			n := openNode(b, b.TempDir())
			defer n.Close()
			start := n.Status()
			var wg sync.WaitGroup
			per := (b.N + p - 1) / p
			b.SetBytes(int64(len(env)))
			b.ResetTimer()
			for w := 0; w < p; w++ {
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
			end := n.Status()
			msgs := float64(per * p)
			b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(end.Messages-start.Messages)/float64(max(end.Entries-start.Entries, 1)), "msgs/entry")
		})
	}
}
