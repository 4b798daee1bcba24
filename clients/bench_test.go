package clients

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"liaison/clients/fakerelay"
)

// benchPublish runs b.N publishes from 256 goroutines spread over nclients
// clients, against the in-process fake (this measures the client, not a
// relay).
func benchPublish(b *testing.B, nclients int) {
	srv := fakerelay.New("bench")
	defer srv.Close()
	ctx := context.Background()
	cs := make([]*Client, nclients)
	for i := range cs {
		c, err := Dial(ctx, []string{srv.Addr}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	env := make([]byte, 256)
	var n atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range 256 {
		c := cs[g%nclients]
		wg.Go(func() {
			for n.Add(1) <= int64(b.N) {
				if _, err := c.Publish(ctx, "bench", env); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkPublish256OneClient(b *testing.B)   { benchPublish(b, 1) }
func BenchmarkPublish256ManyClients(b *testing.B) { benchPublish(b, 64) }
