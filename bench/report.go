package main

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
)

func runOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func splitLines(s string) []string   { return strings.Split(s, "\n") }
func indexByte(s string, b byte) int { return strings.IndexByte(s, b) }
func trim(s string) string           { return strings.TrimSpace(s) }

// rowKey identifies a row of a table: everything but the system.
type rowKey struct {
	metric      string
	payload     int
	publishers  int
	rate        int
	subscribers int
}

func keyOf(f figure) rowKey {
	return rowKey{f.Metric, f.PayloadBytes, f.Publishers, f.OfferedRate, f.Subscribers}
}

// lookup finds the value of system for key.
func lookup(res *results, system string, k rowKey) (float64, bool) {
	f, ok := lookupFig(res, system, k)
	return f.Value, ok
}

func lookupFig(res *results, system string, k rowKey) (figure, bool) {
	for _, f := range res.Figures {
		if f.System == system && keyOf(f) == k {
			return f, true
		}
	}
	return figure{}, false
}

func rows(res *results, metrics ...string) []rowKey {
	var out []rowKey
	seen := map[rowKey]bool{}
	for _, m := range metrics {
		for _, f := range res.Figures {
			if k := keyOf(f); f.Metric == m && !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func fmtValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

var metricNames = map[string]string{
	mThroughput: "acked msgs/s",
	mLatP50:     "p50", mLatP99: "p99", mLatP999: "p99.9",
	mDelivered: "delivered msgs/s",
	mCatchup:   "catch-up msgs/s",
	mIdle:      "KiB per idle connection",
	mFanout:    "deliveries/s",
}

// table writes one comparison table: a row per key, a column per system and
// the ratio Liaison / each JetStream column.
func table(b *strings.Builder, res *results, systems []string, label func(rowKey) string, metrics ...string) {
	var js []string
	for _, s := range systems {
		if s != sysLiaison {
			js = append(js, s)
		}
	}
	b.WriteString("| |")
	for _, s := range systems {
		b.WriteString(" " + s + " |")
	}
	hasL := contains(systems, sysLiaison)
	if hasL {
		for _, s := range js {
			b.WriteString(" liaison / " + s + " |")
		}
	}
	b.WriteString("\n|---|")
	for range systems {
		b.WriteString("---:|")
	}
	if hasL {
		for range js {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, k := range rows(res, metrics...) {
		fmt.Fprintf(b, "| %s |", label(k))
		for _, s := range systems {
			if f, ok := lookupFig(res, s, k); ok {
				mark := ""
				if f.Note != "" {
					mark = "≥ "
				}
				b.WriteString(" " + mark + fmtValue(f.Value) + " |")
			} else {
				b.WriteString(" – |")
			}
		}
		if hasL {
			l, lok := lookup(res, sysLiaison, k)
			for _, s := range js {
				if v, ok := lookup(res, s, k); ok && lok && v != 0 {
					fmt.Fprintf(b, " %.2f |", l/v)
				} else {
					b.WriteString(" – |")
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// systemsIn lists the systems with figures, in the run's order.
func systemsIn(cfg config, res *results) []string {
	var out []string
	for _, s := range cfg.systems {
		for _, f := range res.Figures {
			if f.System == s {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// goal is one of the targets, checked against this run.
type goal struct {
	what   string
	ok     bool
	detail string
}

func goals(res *results) []goal {
	var out []goal
	ratio := func(metric string, want func(r float64) bool, what string) {
		worst, n, okAll := 0.0, 0, true
		var parts []string
		for _, k := range rows(res, metric) {
			l, ok1 := lookup(res, sysLiaison, k)
			j, ok2 := lookup(res, sysJSAlways, k)
			if !ok1 || !ok2 || j == 0 {
				continue
			}
			r := l / j
			n++
			if !want(r) {
				okAll = false
				parts = append(parts, fmt.Sprintf("%s: %.2f", rowLabel(k), r))
			}
			if n == 1 || !want(worst) || (want(r) == want(worst) && math.Abs(r-1) < math.Abs(worst-1)) {
				worst = r
			}
		}
		if n == 0 {
			return
		}
		d := fmt.Sprintf("%d of %d points hold", n-len(parts), n)
		if len(parts) > 0 {
			d += "; short: " + strings.Join(parts, ", ")
		}
		out = append(out, goal{what, okAll, d})
	}
	ratio(mThroughput, func(r float64) bool { return r >= 2 }, "durable publish throughput ≥ 2× JetStream (sync always)")
	ratio(mLatP99, func(r float64) bool { return r <= 0.5 }, "p99 publish-to-delivery latency ≤ ½ JetStream's (sync always)")
	ratio(mCatchup, func(r float64) bool { return r >= 5 }, "catch-up ≥ 5× JetStream (sync always)")
	for _, f := range res.Figures {
		if f.System == sysLiaison && f.Metric == mIdle {
			out = append(out, goal{"idle connection ≤ 4 KiB", f.Value > 0 && f.Value <= 4, fmt.Sprintf("%.2f KiB", f.Value)})
		}
		if f.System == sysLiaison && f.Metric == mFieldUtil {
			out = append(out, goal{"field link ≥ 80% of the link's rate", f.Value >= 80, fmt.Sprintf("%.1f%%", f.Value)})
		}
	}
	return out
}

func rowLabel(k rowKey) string {
	var p []string
	if k.payload > 0 {
		p = append(p, fmt.Sprintf("%d B", k.payload))
	}
	if k.publishers > 0 && k.subscribers == 0 {
		p = append(p, fmt.Sprintf("%d pub", k.publishers))
	}
	if k.rate > 0 {
		p = append(p, fmt.Sprintf("%d/s", k.rate))
	}
	if k.subscribers > 0 {
		p = append(p, fmt.Sprintf("%d subs", k.subscribers))
	}
	if k.metric == mIdle {
		p = append(p, "idle connections")
	}
	if n, ok := metricNames[k.metric]; ok && (k.metric == mLatP50 || k.metric == mLatP99 || k.metric == mLatP999 || k.metric == mDelivered) {
		p = append(p, n)
	}
	return strings.Join(p, ", ")
}

func printSummary(cfg config, res *results) {
	var b strings.Builder
	writeTables(&b, cfg, res)
	b.WriteString("Goals:\n")
	for _, g := range goals(res) {
		mark := "MISSED"
		if g.ok {
			mark = "met"
		}
		fmt.Fprintf(&b, "  %-6s %s (%s)\n", mark, g.what, g.detail)
	}
	fmt.Fprint(cfg.out, b.String())
}

func writeTables(b *strings.Builder, cfg config, res *results) {
	sys := systemsIn(cfg, res)
	section := func(title, note string, metrics ...string) {
		if len(rows(res, metrics...)) == 0 {
			return
		}
		fmt.Fprintf(b, "### %s\n\n", title)
		if note != "" {
			b.WriteString(note + "\n\n")
		}
		table(b, res, sys, rowLabel, metrics...)
	}
	section("Durable publish throughput (acked messages/s)",
		"Each publisher has its own connection and awaits each ack before the next publish; publishers are spread over the three nodes.",
		mThroughput)
	section("Publish-to-delivery latency (ms)",
		"One publisher on node 1 sends at the offered rate without waiting for acks; one subscriber on node 2 receives. The first tenth of each run is warm-up. 'delivered msgs/s' is the rate the subscriber actually saw. JetStream's stream leader is wherever JetStream placed it. A system that cannot keep up gets 20 s after the load stops; messages still undelivered then count with the time they had waited, so those figures (marked ≥) are lower bounds.",
		mLatP50, mLatP99, mLatP999, mDelivered)
	section("Catch-up (messages/s)",
		fmt.Sprintf("A subscriber on node 2 (a follower) reads %s stored 512 B messages from the first.", countOf(res, mCatchup)),
		mCatchup)
	section("Memory per idle authenticated WebSocket connection (KiB)",
		fmt.Sprintf("Resident-set growth of node 1 (/proc/PID/status VmRSS) divided by %s connections, from source addresses 127.0.0.2-5. JetStream: nats-server's WebSocket listener.", connsOf(res)),
		mIdle)
	section("Fan-out (deliveries/s)",
		"One publisher on node 1; the subscribers, one connection each, spread over the three nodes (JetStream: one ordered consumer each); from the first publish to the last delivery.",
		mFanout)
}

func countOf(res *results, metric string) string {
	for _, f := range res.Figures {
		if f.Metric == metric && f.Messages > 0 {
			return fmt.Sprintf("%d", f.Messages)
		}
	}
	return "the"
}

func connsOf(res *results) string {
	for _, f := range res.Figures {
		if f.Metric == mIdle {
			return fmt.Sprintf("%d", f.Connections)
		}
	}
	return "the"
}

func fieldValue(res *results, metric string) (float64, bool) {
	for _, f := range res.Figures {
		if f.Metric == metric && f.System == sysLiaison {
			return f.Value, true
		}
	}
	return 0, false
}

func markdown(cfg config, res *results) string {
	var b strings.Builder
	b.WriteString("# Performance: Liaison and NATS JetStream side by side\n\n")
	b.WriteString("This file is written by the benchmark harness in `bench/` (do not edit the figures by hand). Every figure below comes from this one run:\n\n")
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", res.Command)
	fmt.Fprintf(&b, "Run from %s to %s UTC on %s.\n", res.Started.Format("2006-01-02 15:04"), res.Finished.Format("15:04"), res.Machine)
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "%s.\n", n)
	}
	b.WriteString(`
Systems, each with three nodes on loopback, started one at a time with fresh data directories:

- **liaison**: three relayd processes (` + "`--open-ops --msg-rate -1 --max-conns-per-addr -1`" + `: no per-connection rate limit, no per-address connection cap), Raft with fsync before every ack; clients use the Go client library (` + "`liaison/clients`" + `), which authenticates every connection.
- **jetstream-always**: three nats-server processes, JetStream with ` + "`sync_interval: always`" + ` (fsync before every ack, like for like with Liaison), streams with three replicas and file storage; clients use nats.go's ` + "`jetstream`" + ` package (publish with PubAck, ordered consumers), authenticated with user and password.
- **jetstream-default**: the same with JetStream's default sync interval (fsync every two minutes; acks do not wait for the disk).

The ratio columns divide Liaison's figure by JetStream's: above 1 is better for Liaison in throughput, catch-up and fan-out, below 1 is better in latency and memory. The machine is shared (2 cores, other jobs running), so absolute numbers are noisy; the ratios come from one run with both systems measured back to back.

`)
	b.WriteString("## Goals\n\n| goal | met | detail |\n|---|---|---|\n")
	for _, g := range goals(res) {
		m := "no"
		if g.ok {
			m = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", g.what, m, g.detail)
	}
	b.WriteString("\n## Figures\n\n")
	writeTables(&b, cfg, res)
	if cfg.plotOut != "" {
		rel, err := filepath.Rel(filepath.Dir(cfg.docOut), cfg.plotOut)
		if err != nil {
			rel = cfg.plotOut
		}
		fmt.Fprintf(&b, "![publish-to-delivery latency percentiles](%s)\n\n", rel)
		b.WriteString("The plot shows p50, p99 and p99.9 (log scale, ms) per offered load and payload; bars in each group: liaison (blue), jetstream-always (orange), jetstream-default (grey).\n\n")
	}
	writeBreakdown(&b, res)
	if secs, ok := fieldValue(res, mFieldSecs); ok {
		floor, _ := fieldValue(res, mFieldFloor)
		util, _ := fieldValue(res, mFieldUtil)
		bpm, _ := fieldValue(res, mFieldBytes)
		down, _ := fieldValue(res, mFieldDown)
		b.WriteString("### Field link (Liaison only)\n\n")
		fmt.Fprintf(&b, "A session client (`clients/session`, in-memory identity) that was offline while %s end-to-end encrypted 512 B messages were sent connects to node 2 through a shaping TCP proxy (%s, %v round trip) and catches up, decrypting and verifying every message.\n\n",
			countOf(res, mFieldSecs), bitsName(cfg.linkBPS), cfg.linkRTT)
		b.WriteString("| figure | value |\n|---|---:|\n")
		fmt.Fprintf(&b, "| seconds from dial to the last message decrypted | %.1f |\n", secs)
		fmt.Fprintf(&b, "| link floor for the plaintext alone (messages × 512 B at the link rate) | %.1f |\n", floor)
		fmt.Fprintf(&b, "| link utilisation (bytes received × 8 / seconds / link rate) | %.1f%% |\n", util)
		fmt.Fprintf(&b, "| bytes on the wire per message, both directions (TCP payload: WebSocket, frames, envelope) | %.0f |\n", bpm)
		fmt.Fprintf(&b, "| of which towards the client | %.0f |\n\n", down)
	}
	b.WriteString("## Reproducing\n\n")
	b.WriteString("Install nats-server once (the harness looks in `$NATS_SERVER`, `$PATH`, `$GOBIN` and `~/go/bin`):\n\n")
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", natsInstall)
	b.WriteString("Then run the command above from the repository root. `go run ./bench -h` lists the flags (figures, payloads, durations, output paths); `go run ./bench -smoke` finishes in seconds and is what CI runs (`go test ./bench`). The harness raises its open-file limit (inherited by the servers) for the idle-connection figure. `-pprof DIR` starts relayd with `--pprof` and saves CPU profiles of every node and of the bench process per figure.\n")
	if extra := profileNotes(); extra != "" {
		b.WriteString("\n" + extra)
	}
	return b.String()
}

func bitsName(bps int) string {
	if bps%1_000_000 == 0 {
		return fmt.Sprintf("%d Mbit/s", bps/1_000_000)
	}
	return fmt.Sprintf("%d kbit/s", bps/1000)
}
