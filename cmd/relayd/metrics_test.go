package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"liaison/relay/wire"
)

// scrape returns /metrics as series (name with labels) -> value.
func scrape(t *testing.T, n *node) map[string]float64 {
	t.Helper()
	return scrapeAddr(t, n.addr.String())
}

// scrapeAddr returns /metrics of the node at addr.
func scrapeAddr(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// /metrics serves the named series in the Prometheus format, and they move
// under load.
func TestMetricsMoveUnderLoad(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	defer n.close()
	before := scrape(t, n)
	for _, s := range []string{`liaison_raft_state{state="Leader"}`, "liaison_ready"} {
		if before[s] != 1 {
			t.Fatalf("%s = %v, want 1", s, before[s])
		}
	}
	ctx := context.Background()
	c := dialClient(t, n.addr.String())
	sub, err := dialClient(t, n.addr.String()).Subscribe(ctx, "metered", 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := c.Publish(ctx, "metered", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, sub, 1, 50)
	// A malformed frame and a refused handshake.
	bad := dialRaw(t, n)
	bad.sendBytes([]byte{0x55, 0xa0})
	_, _ = bad.tryRead()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := &rawConn{t: t, ws: ws}
	raw.read()
	raw.send(&wire.Subscribe{Req: 1, Op: "metered", From: 1})
	_, _ = raw.tryRead()
	ws.Close()

	after := scrape(t, n)
	grew := map[string]float64{
		`liaison_publishes_total{result="ok"}`:                50,
		"liaison_deliveries_total":                            50,
		"liaison_messages_batched_total":                      50,
		"liaison_commit_seconds_count":                        1,
		"liaison_raft_log_append_seconds_count":               1,
		"liaison_messages_per_entry_count":                    1,
		"liaison_bad_frames_total":                            1,
		`liaison_auth_failures_total{reason="no_auth_frame"}`: 1,
		"liaison_raft_commit_index":                           1,
		"liaison_raft_applied_index":                          1,
	}
	for s, min := range grew {
		if after[s]-before[s] < min {
			t.Errorf("%s moved from %v to %v, want +%v", s, before[s], after[s], min)
		}
	}
	for _, s := range []string{"liaison_connections", "liaison_subscriptions", "liaison_outbound_queue_bytes", "liaison_raft_term", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[s]; !ok {
			t.Errorf("%s missing", s)
		}
	}
	if after["liaison_connections"] < 2 || after["liaison_subscriptions"] < 1 {
		t.Errorf("connections %v, subscriptions %v", after["liaison_connections"], after["liaison_subscriptions"])
	}
}
