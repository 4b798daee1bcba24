package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// results is everything one run produced.
type results struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  string    `json:"machine"`
	Figures  []figure  `json:"figures"`
	Notes    []string  `json:"notes,omitempty"`
}

func (r *results) add(f figure) { r.Figures = append(r.Figures, f) }

func runConfig(ctx context.Context, cfg config) error {
	_, err := measureAll(ctx, cfg)
	return err
}

// measureAll runs every configured system and figure, prints the summary
// and writes the outputs.
func measureAll(ctx context.Context, cfg config) (*results, error) {
	res := &results{Command: cfg.command, Started: time.Now().UTC(), Machine: machineNotes()}
	limit, err := raiseFileLimit(65536)
	if err != nil {
		return nil, fmt.Errorf("raise the open-file limit: %w", err)
	}
	if need := uint64(cfg.idleConns + 2000); cfg.figures["idle"] && limit < need {
		cfg.log.Warn("open-file limit below what the idle figure needs", "limit", limit, "need", need)
	}
	work := cfg.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "liaison-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	relaydBin := cfg.relayd
	if relaydBin == "" && contains(cfg.systems, sysLiaison) {
		cfg.log.Info("building relayd")
		if relaydBin, err = buildRelayd(ctx, work); err != nil {
			return nil, err
		}
	}
	natsBin := ""
	if contains(cfg.systems, sysJSAlways) || contains(cfg.systems, sysJSDefault) {
		if natsBin, err = findNatsServer(cfg.natsServer); err != nil {
			return nil, err
		}
		if out, err := runOutput(natsBin, "--version"); err == nil {
			res.Notes = append(res.Notes, "nats-server: "+out)
		}
	}
	for i, name := range cfg.systems {
		dir := filepath.Join(work, fmt.Sprintf("%d-%s", i, name))
		cfg.log.Info("starting system", "system", name, "dir", dir)
		var sys system
		switch name {
		case sysLiaison:
			var extra []string
			if cfg.pprofDir != "" {
				extra = append(extra, "--pprof")
			}
			sys, err = startLiaison(ctx, relaydBin, dir, extra, cfg.log)
		case sysJSAlways:
			sys, err = startNats(ctx, natsBin, dir, true, cfg.log)
		case sysJSDefault:
			sys, err = startNats(ctx, natsBin, dir, false, cfg.log)
		}
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		err = measureSystem(ctx, cfg, sys, res, func(fig string, err error) {
			cfg.log.Error("figure failed; going on with the next", "system", name, "figure", fig, "err", err)
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %s failed: %v", name, fig, err))
		})
		sys.close()
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			cfg.log.Warn("remove data dir", "err", rmErr)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	res.Finished = time.Now().UTC()
	printSummary(cfg, res)
	return res, writeOutputs(cfg, res)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func measureSystem(ctx context.Context, cfg config, sys system, res *results, failed func(fig string, err error)) error {
	if !cfg.keepGoing {
		failed = nil
	}
	name := sys.name()
	lc, _ := sys.(*liaisonCluster) // nil for JetStream
	prof := func(fig string) func() {
		if lc != nil && cfg.pprofDir != "" {
			return lc.profile(ctx, cfg.pprofDir, fig, cfg.log)
		}
		return func() {}
	}
	logf := func(msg string, args ...any) { cfg.log.Info(msg, append([]any{"system", name}, args...)...) }
	// fatal reports a figure's failure: with -keep-going it is noted and
	// the run goes on (nil), otherwise it ends the run.
	fatal := func(err error) error {
		if failed == nil || ctx.Err() != nil {
			return err
		}
		failed("", err)
		return nil
	}
	if cfg.figures["throughput"] {
		stop := prof("throughput")
		for _, pl := range cfg.payloads {
			for _, p := range cfg.publishers {
				var before []map[string]float64
				if lc != nil {
					before, _ = lc.scrape(ctx)
				}
				v, err := measureThroughput(ctx, sys, pl, p, cfg.duration)
				if err != nil {
					if err := fatal(fmt.Errorf("throughput %d B x %d: %w", pl, p, err)); err != nil {
						stop()
						return err
					}
					continue
				}
				logf("throughput", "payload", pl, "publishers", p, "msgs_per_s", round(v))
				res.add(figure{System: name, Metric: mThroughput, PayloadBytes: pl, Publishers: p, Value: v, Unit: "msgs/s"})
				if lc != nil && before != nil {
					after, err := lc.scrape(ctx)
					if b, ok := breakdown(before, after); err == nil && ok {
						logf("commit breakdown", "payload", pl, "publishers", p, "commit_ms", b.commit, "leader_append_ms", b.leaderAppend, "follower_append_ms", b.followerAppend)
						for _, x := range []struct {
							m string
							v float64
						}{{mCommit, b.commit}, {mAppendLeader, b.leaderAppend}, {mAppendFollower, b.followerAppend}} {
							res.add(figure{System: name, Metric: x.m, PayloadBytes: pl, Publishers: p, Value: x.v, Unit: "ms"})
						}
					}
				}
			}
		}
		stop()
	}
	if cfg.figures["latency"] {
		stop := prof("latency")
		for _, pl := range cfg.payloads {
			for _, rate := range cfg.rates {
				r, err := measureLatency(ctx, sys, pl, rate, cfg.duration)
				if err != nil {
					if err := fatal(fmt.Errorf("latency %d B at %d/s: %w", pl, rate, err)); err != nil {
						stop()
						return err
					}
					continue
				}
				logf("latency", "payload", pl, "rate", rate, "p50", r.p50, "p99", r.p99, "p999", r.p999, "delivered_per_s", round(r.delivered), "missing", r.missing)
				note := ""
				if r.missing > 0 {
					note = fmt.Sprintf("lower bound: %d messages not delivered %v after the load stopped", r.missing, latencyWait)
				}
				for _, x := range []struct {
					m string
					v time.Duration
				}{{mLatP50, r.p50}, {mLatP99, r.p99}, {mLatP999, r.p999}} {
					res.add(figure{System: name, Metric: x.m, PayloadBytes: pl, OfferedRate: rate, Value: float64(x.v) / 1e6, Unit: "ms", Note: note})
				}
				res.add(figure{System: name, Metric: mDelivered, PayloadBytes: pl, OfferedRate: rate, Value: r.delivered, Unit: "msgs/s"})
			}
		}
		stop()
	}
	if cfg.figures["catchup"] {
		// Profile the reading only, not the storing before it.
		v, err := measureCatchup(ctx, sys, cfg.catchupN, logf, func() func() { return prof("catchup") })
		if err != nil {
			if err := fatal(fmt.Errorf("catch-up: %w", err)); err != nil {
				return err
			}
		} else {
			logf("catch-up", "messages", cfg.catchupN, "msgs_per_s", round(v))
			res.add(figure{System: name, Metric: mCatchup, PayloadBytes: 512, Messages: cfg.catchupN, Value: v, Unit: "msgs/s"})
		}
	}
	if cfg.figures["idle"] {
		inspect := func(string) {}
		if lc != nil && cfg.pprofDir != "" {
			inspect = func(stage string) { lc.saveMemory(cfg.pprofDir, stage, cfg.log) }
		}
		v, err := measureIdle(ctx, sys, cfg.idleConns, inspect)
		if err != nil {
			if err := fatal(fmt.Errorf("idle connections: %w", err)); err != nil {
				return err
			}
		} else {
			logf("idle connections", "connections", cfg.idleConns, "bytes_each", round(v))
			res.add(figure{System: name, Metric: mIdle, Connections: cfg.idleConns, Value: v / 1024, Unit: "KiB/conn"})
		}
	}
	if cfg.figures["fanout"] {
		stop := prof("fanout")
		for _, pl := range cfg.payloads {
			v, err := measureFanout(ctx, sys, pl, cfg.fanoutSubs, cfg.fanoutMsgs)
			// Its thousand consumers would count against the next
			// payload's (JetStream: "maximum consumers limit reached").
			if derr := sys.dropStream(ctx, fanoutStream(pl, cfg.fanoutSubs)); derr != nil {
				logf("fan-out cleanup", "err", derr)
			}
			if err != nil {
				if err := fatal(fmt.Errorf("fan-out %d B: %w", pl, err)); err != nil {
					stop()
					return err
				}
				continue
			}
			logf("fan-out", "payload", pl, "subscribers", cfg.fanoutSubs, "deliveries_per_s", round(v))
			res.add(figure{System: name, Metric: mFanout, PayloadBytes: pl, Publishers: 1, Subscribers: cfg.fanoutSubs, Messages: cfg.fanoutMsgs, Value: v, Unit: "deliveries/s"})
		}
		stop()
	}
	if lc != nil && cfg.figures["field"] {
		stop := prof("field")
		fr, err := measureField(ctx, lc, cfg)
		stop()
		if err != nil {
			return fatal(fmt.Errorf("field link: %w", err))
		}
		logf("field link", "messages", cfg.fieldMsgs, "seconds", fr.seconds, "floor", fr.floor, "utilisation", fr.utilisation, "wire_bytes_per_msg", round(fr.bytesPerMsg))
		base := figure{System: name, PayloadBytes: 512, Messages: cfg.fieldMsgs}
		for _, x := range []struct {
			m, unit string
			v       float64
		}{
			{mFieldSecs, "s", fr.seconds}, {mFieldFloor, "s", fr.floor}, {mFieldUtil, "%", fr.utilisation * 100},
			{mFieldBytes, "B/msg", fr.bytesPerMsg}, {mFieldDown, "B/msg", fr.downPerMsg},
		} {
			f := base
			f.Metric, f.Value, f.Unit = x.m, x.v, x.unit
			res.add(f)
		}
	}
	return nil
}

func round(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func writeOutputs(cfg config, res *results) error {
	if cfg.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if cfg.plotOut != "" {
		if err := writePlot(cfg.plotOut, res); err != nil {
			return err
		}
	}
	if cfg.docOut != "" {
		if err := os.WriteFile(cfg.docOut, []byte(markdown(cfg, res)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func machineNotes() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range splitLines(string(b)) {
			if len(line) > 10 && line[:10] == "model name" {
				if i := indexByte(line, ':'); i >= 0 {
					cpu = trim(line[i+1:])
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		lines := splitLines(string(b))
		if len(lines) > 0 {
			mem = ", " + trim(lines[0])
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s)%s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, mem, runtime.Version())
}
