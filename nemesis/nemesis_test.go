package nemesis

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	t.Logf("nemesis report after %v (seed %d):\n%s", res.Elapsed.Round(time.Second), res.Config.Seed, res.Report)
	if res.Report.Anomalies() != 0 {
		t.Errorf("%d anomalies; node logs: %s", res.Report.Anomalies(), filepath.Join(cfg.Dir, "n*.log"))
	}
	return res
}

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
		d, _ = time.ParseDuration(v)
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
