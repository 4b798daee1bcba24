package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// runNemesis runs the harness and fails the test on any anomaly, writing
// the report (and, with LIAISON_NEMESIS_SUMMARY, a copy to that file).
func runNemesis(t *testing.T, cfg Config) *Result {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
		if keep := os.Getenv("LIAISON_NEMESIS_DIR"); keep != "" {
			cfg.Dir = filepath.Join(keep, t.Name()+time.Now().UTC().Format("-150405"))
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+15*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("nemesis run: %v (node logs under %s)", err, cfg.Dir)
	}
	summary := fmt.Sprintf("nemesis run: %d nodes, %v of faults, %d publishers, %d subscribers, seed %d, wall time %v\n%s",
		res.Config.Nodes, res.Config.Duration, res.Config.Publishers, res.Config.Subscribers, res.Config.Seed, res.Elapsed.Round(time.Second), res.Report)
	t.Log(summary)
	if file := os.Getenv("LIAISON_NEMESIS_SUMMARY"); file != "" {
		var b strings.Builder
		b.WriteString(summary)
		b.WriteString("\nfaults (seconds since start, healed, kind, target, error):\n")
		for _, f := range res.History.Faults {
			fmt.Fprintf(&b, "%8.1f %8.1f %-17s %-12s %s\n", f.At.Seconds(), f.Healed.Seconds(), f.Kind, f.Target, f.Err)
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	// A fault kind that never took effect means the harness lost its
	// grip (a changed API, for example): fail rather than pass quietly.
	tried, failed := make(map[string]int), make(map[string]int)
	for _, f := range res.History.Faults {
		tried[f.Kind]++
		if f.Err != "" {
			failed[f.Kind]++
		}
	}
	for k, n := range tried {
		if failed[k] == n {
			t.Errorf("every %s fault (%d) failed to apply; first: %s", k, n, firstErr(res.History.Faults, k))
		}
	}
	if res.Report.Anomalies() != 0 {
		t.Errorf("%d anomalies; node logs: %s", res.Report.Anomalies(), filepath.Join(cfg.Dir, "n*.log"))
	}
	return res
}

func firstErr(faults []Fault, kind string) string {
	for _, f := range faults {
		if f.Kind == kind && f.Err != "" {
			return f.Err
		}
	}
	return ""
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func TestNemesisShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes")
	}
	d := 60 * time.Second
	if v := os.Getenv("LIAISON_NEMESIS_SHORT"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("LIAISON_NEMESIS_SHORT=%q: want a positive duration (%v)", v, err)
		}
	}
	var kinds []string
	if v := os.Getenv("LIAISON_NEMESIS_KINDS"); v != "" {
		kinds = strings.Split(v, ",")
	}
	res := runNemesis(t, Config{Nodes: 3, Duration: d, Kinds: kinds, Publishers: 6, Subscribers: 4, PublishPause: 20 * time.Millisecond})
	if res.Report.Acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
}

// TestNemesisLong runs when LIAISON_NEMESIS is a duration (for example 30m):
// five nodes, more clients, every fault kind. docs/reliability.md gives the
// command and the figures of a run.
func TestNemesisLong(t *testing.T) {
	v := os.Getenv("LIAISON_NEMESIS")
	if v == "" {
		t.Skip("set LIAISON_NEMESIS=30m to run the long nemesis")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("LIAISON_NEMESIS=%q: %v", v, err)
	}
	res := runNemesis(t, Config{Nodes: 5, Duration: d, Publishers: 10, Subscribers: 8, PublishPause: 40 * time.Millisecond,
		LinearizabilityTimeout: 5 * time.Minute})
	if res.Report.Acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
}

// A misspelt fault kind (LIAISON_NEMESIS_KINDS) is refused before any
// cluster starts, rather than ignored or, alone, drawn from nothing.
func TestRunRefusesUnknownFaultKind(t *testing.T) {
	for _, kinds := range [][]string{{"partiton-node"}, {FaultDelay, "kill-al"}} {
		res, err := Run(context.Background(), Config{Dir: t.TempDir(), Duration: time.Second, Kinds: kinds})
		if !errors.Is(err, ErrUnknownFault) || res != nil {
			t.Fatalf("Kinds %v: %v, %v; want ErrUnknownFault", kinds, res, err)
		}
	}
}
