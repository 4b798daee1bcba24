package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// profile collects consecutive 2 s CPU profiles of every relayd node
// (started with --pprof) into dir/FIG-nK-N.pprof, and one CPU profile of
// this process (the clients) into dir/FIG-client.pprof, until the returned
// stop is called. Merge a node's with `go tool pprof -top dir/FIG-n1-*.pprof`.
func (lc *liaisonCluster) profile(ctx context.Context, dir, fig string, log *slog.Logger) func() {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn("pprof dir", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for k, n := range lc.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=2", n.listen)
				req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
				if err != nil {
					return
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					log.Warn("pprof", "err", err)
					return
				}
				if resp.StatusCode != http.StatusOK {
					// Another figure's profile is still running.
					resp.Body.Close()
					i--
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-n%d-%d.pprof", fig, k+1, i)))
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
	}
	var cf *os.File
	if f, err := os.Create(filepath.Join(dir, fig+"-client.pprof")); err == nil {
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
		} else {
			cf = f
		}
	}
	return func() {
		if cf != nil {
			pprof.StopCPUProfile()
			cf.Close()
		}
		cancel()
		wg.Wait()
	}
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
