package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profile collects consecutive 10 s CPU profiles of relayd node 1 (started
// with --pprof) into dir/FIG-N.pprof until the returned stop is called.
// Merge them with `go tool pprof -top dir/FIG-*.pprof`.
func (lc *liaisonCluster) profile(ctx context.Context, dir, fig string, log *slog.Logger) func() {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn("pprof dir", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=10", lc.nodes[0].listen)
			req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
			if err != nil {
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				log.Warn("pprof", "err", err)
				return
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", fig, i)))
			if err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// saveMemory saves node 1's heap profile and Go memory metrics as
// DIR/idle-STAGE.heap and DIR/idle-STAGE.metrics.
func (lc *liaisonCluster) saveMemory(dir, stage string, log *slog.Logger) {
	_ = os.MkdirAll(dir, 0o755)
	for _, x := range []struct{ path, file string }{
		{"/debug/pprof/heap", "idle-" + stage + ".heap"},
		{"/metrics", "idle-" + stage + ".metrics"},
	} {
		resp, err := http.Get("http://" + lc.nodes[0].listen + x.path)
		if err != nil {
			log.Warn("save memory profile", "err", err)
			return
		}
		f, err := os.Create(filepath.Join(dir, x.file))
		if err == nil {
			_, _ = io.Copy(f, resp.Body)
			f.Close()
		}
		resp.Body.Close()
	}
}
