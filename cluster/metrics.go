package cluster

import "sync/atomic"

// counters are the node's own figures; Status reports them.
type counters struct {
	entries  atomic.Uint64 // Raft entries built by the batcher
	messages atomic.Uint64 // publishes packed into them
}

func (c *counters) observeBatch(n int) {
	c.entries.Add(1)
	c.messages.Add(uint64(n))
}
