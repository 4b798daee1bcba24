// Command bench measures Liaison against NATS JetStream on this machine, in
// one run: it starts three relayd nodes, measures them, stops them, then
// starts three nats-server nodes (JetStream, three replicas, file storage)
// with sync_interval "always" and again with the default, and measures
// those, one system at a time with fresh data dirs. It writes every figure
// to a JSON file, a Markdown report with the Liaison / JetStream ratios and a
// PNG plot of the latency percentiles.
//
//	go run ./bench                 # the full run (about 20 minutes)
//	go run ./bench -smoke          # a few seconds, for CI
//
// nats-server is looked up in $NATS_SERVER, $PATH, $GOBIN and ~/go/bin;
// install it with
//
//	go install github.com/nats-io/nats-server/v2@v2.15.2
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is what one run measures.
type config struct {
	smoke      bool
	systems    []string // liaison, jetstream-always, jetstream-default
	figures    map[string]bool
	payloads   []int
	publishers []int
	rates      []int
	duration   time.Duration // per throughput or latency point
	catchupN   int
	idleConns  int
	fanoutSubs int
	fanoutMsgs int
	fieldMsgs  int
	linkBPS    int
	linkRTT    time.Duration
	jsonOut    string
	docOut     string
	plotOut    string
	workDir    string
	relayd     string // prebuilt relayd binary; empty: build one
	natsServer string
	pprofDir   string
	keepGoing  bool
	command    string
	log        *slog.Logger
	out        io.Writer
}

var allFigures = []string{"throughput", "latency", "catchup", "idle", "fanout", "field"}

func parseConfig(args []string, stdout, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", false, "tiny sizes and short durations: finishes in seconds (CI)")
	systems := fs.String("systems", "liaison,jetstream-always,jetstream-default", "systems to measure, in order")
	figures := fs.String("figures", strings.Join(allFigures, ","), "figures to measure: "+strings.Join(allFigures, ","))
	payloads := fs.String("payloads", "256,1024,4096", "payload sizes in bytes for throughput, latency and fan-out")
	publishers := fs.String("publishers", "1,16,256", "concurrent publishers for throughput")
	rates := fs.String("rates", "1000,5000,20000", "offered loads (messages/s) for latency")
	duration := fs.Duration("duration", 5*time.Second, "duration of each throughput and latency point")
	catchupN := fs.Int("catchup", 1_000_000, "stored 512 B messages a catching-up subscriber reads")
	idle := fs.Int("idle", 15_000, "idle authenticated WebSocket connections for the memory figure")
	fanSubs := fs.Int("fanout-subs", 1000, "subscribers for fan-out")
	fanMsgs := fs.Int("fanout-msgs", 1000, "messages published for fan-out")
	fieldMsgs := fs.Int("field-msgs", 10_000, "512 B messages the field client catches up on")
	linkBPS := fs.Int("link-bps", 1_000_000, "field link rate, bits/s each way")
	linkRTT := fs.Duration("link-rtt", 300*time.Millisecond, "field link round trip")
	jsonOut := fs.String("json", "bench/results.json", "results file (empty: none)")
	docOut := fs.String("doc", "docs/performance.md", "Markdown report (empty: none)")
	plotOut := fs.String("plot", "docs/performance-latency.png", "latency plot (empty: none)")
	workDir := fs.String("workdir", "", "directory for data dirs and binaries (default: a fresh temporary one, removed after)")
	relayd := fs.String("relayd", "", "relayd binary to use (default: build ./cmd/relayd)")
	natsServer := fs.String("nats-server", "", "nats-server binary (default: $NATS_SERVER, $PATH, $GOBIN, ~/go/bin)")
	pprofDir := fs.String("pprof", "", "write CPU profiles of every relayd node and of this process per figure, and node 1's heap and metrics around the idle connections, into this directory")
	verbose := fs.Bool("v", false, "log progress in detail")
	keepGoing := fs.Bool("keep-going", false, "note a failed figure in the report and go on with the next (default: stop the run)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c := config{
		smoke: *smoke, duration: *duration, catchupN: *catchupN, idleConns: *idle,
		fanoutSubs: *fanSubs, fanoutMsgs: *fanMsgs, fieldMsgs: *fieldMsgs,
		linkBPS: *linkBPS, linkRTT: *linkRTT, jsonOut: *jsonOut, docOut: *docOut, plotOut: *plotOut,
		workDir: *workDir, relayd: *relayd, natsServer: *natsServer, pprofDir: *pprofDir, keepGoing: *keepGoing,
		figures: map[string]bool{}, out: stdout,
		command: "go run ./bench " + strings.Join(args, " "),
	}
	c.command = strings.TrimSpace(c.command)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c.systems = splitList(*systems)
	for _, s := range c.systems {
		if s != sysLiaison && s != sysJSAlways && s != sysJSDefault {
			return config{}, fmt.Errorf("unknown system %q", s)
		}
	}
	for _, f := range splitList(*figures) {
		ok := false
		for _, a := range allFigures {
			ok = ok || a == f
		}
		if !ok {
			return config{}, fmt.Errorf("unknown figure %q", f)
		}
		c.figures[f] = true
	}
	var err error
	if c.payloads, err = ints(*payloads); err != nil {
		return config{}, fmt.Errorf("-payloads: %w", err)
	}
	if c.publishers, err = ints(*publishers); err != nil {
		return config{}, fmt.Errorf("-publishers: %w", err)
	}
	if c.rates, err = ints(*rates); err != nil {
		return config{}, fmt.Errorf("-rates: %w", err)
	}
	if c.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("payloads", func() { c.payloads = []int{1024} })
		def("publishers", func() { c.publishers = []int{1, 16} })
		def("rates", func() { c.rates = []int{500} })
		def("duration", func() { c.duration = 500 * time.Millisecond })
		def("catchup", func() { c.catchupN = 2000 })
		def("idle", func() { c.idleConns = 200 })
		def("fanout-subs", func() { c.fanoutSubs = 20 })
		def("fanout-msgs", func() { c.fanoutMsgs = 50 })
		def("field-msgs", func() { c.fieldMsgs = 20 })
		def("link-bps", func() { c.linkBPS = 8_000_000 })
		def("link-rtt", func() { c.linkRTT = 20 * time.Millisecond })
		def("json", func() { c.jsonOut = "" })
		def("doc", func() { c.docOut = "" })
		def("plot", func() { c.plotOut = "" })
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stdout, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	return runConfig(ctx, cfg)
}
