package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Where a durable publish's time goes, from relayd's own metrics around each
// throughput point (Liaison only): the leader's mean commit time (raft Apply
// to the FSM's answer) and the mean time of one append to the Raft log on
// the leader and on the followers. A commit waits for the leader's append
// and then a follower's, in series.
const (
	mCommit         = "commit_mean"
	mAppendLeader   = "log_append_leader_mean"
	mAppendFollower = "log_append_follower_mean"
)

// The series read from each node's /metrics.
const (
	seriesCommitSum   = "liaison_commit_seconds_sum"
	seriesCommitCount = "liaison_commit_seconds_count"
	seriesAppendSum   = "liaison_raft_log_append_seconds_sum"
	seriesAppendCount = "liaison_raft_log_append_seconds_count"
	seriesLeader      = `liaison_raft_state{state="Leader"}`
)

// maxMetricsBytes bounds one /metrics answer.
const maxMetricsBytes = 4 << 20

// scrape reads the unlabelled (and the leader state) series of every node.
func (lc *liaisonCluster) scrape(ctx context.Context) ([]map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := make([]map[string]float64, len(lc.nodes))
	for i, n := range lc.nodes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.listen+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", n.id, err)
		}
		out[i], err = parseMetrics(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", n.id, err)
		}
	}
	return out, nil
}

// parseMetrics reads Prometheus text exposition lines as "series value",
// up to maxMetricsBytes.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(r, maxMetricsBytes))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// commitBreakdown is the means, in ms, over one measurement.
type commitBreakdown struct {
	commit, leaderAppend, followerAppend float64
}

// breakdown compares two scrapes of the same nodes. ok is false when no
// node led throughout or nothing was committed in between.
func breakdown(before, after []map[string]float64) (b commitBreakdown, ok bool) {
	if len(before) != len(after) {
		return b, false
	}
	mean := func(sum, count string, nodes ...int) (float64, bool) {
		var s, c float64
		for _, i := range nodes {
			s += after[i][sum] - before[i][sum]
			c += after[i][count] - before[i][count]
		}
		if c <= 0 {
			return 0, false
		}
		return s / c * 1000, true
	}
	leader := -1
	var followers []int
	for i := range after {
		if before[i][seriesLeader] == 1 && after[i][seriesLeader] == 1 {
			leader = i
		} else {
			followers = append(followers, i)
		}
	}
	if leader < 0 {
		return b, false
	}
	var ok1, ok2, ok3 bool
	b.commit, ok1 = mean(seriesCommitSum, seriesCommitCount, leader)
	b.leaderAppend, ok2 = mean(seriesAppendSum, seriesAppendCount, leader)
	b.followerAppend, ok3 = mean(seriesAppendSum, seriesAppendCount, followers...)
	return b, ok1 && ok2 && ok3
}

// writeBreakdown adds the table of commitBreakdown figures to the report:
// how a Liaison acknowledgement's time divides, next to JetStream's whole
// acknowledgement, and what the throughput goal asks of it.
func writeBreakdown(b *strings.Builder, res *results) {
	ks := rows(res, mCommit)
	if len(ks) == 0 {
		return
	}
	b.WriteString("### Where a durable publish's time goes (Liaison, from relayd's metrics)\n\n")
	b.WriteString("Around each throughput point the harness reads every relayd's `/metrics`: the leader's mean commit time " +
		"(`liaison_commit_seconds`: raft Apply to the FSM's answer) and the mean time of one append to the Raft log " +
		"(`liaison_raft_log_append_seconds`: a raft-boltdb write, which is a bbolt commit with two fdatasync) on the leader " +
		"and on the followers. A commit waits for the leader's append and then a follower's, in series: hashicorp/raft " +
		"sends an entry to the followers only after the leader's own append returns. A publisher's time per acknowledgement " +
		"is publishers / throughput (each publisher waits for its acknowledgement before the next publish).\n\n")
	b.WriteString("| payload | publishers | ms per ack, liaison | ms per ack, jetstream-always | commit (leader) | log append, leader | log append, follower | the two appends |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	perAck := func(sys string, k rowKey) string {
		v, ok := lookup(res, sys, rowKey{metric: mThroughput, payload: k.payload, publishers: k.publishers})
		if !ok || v <= 0 {
			return "-"
		}
		return fmtValue(float64(k.publishers) / v * 1000)
	}
	val := func(m string, k rowKey) (float64, bool) {
		return lookup(res, sysLiaison, rowKey{metric: m, payload: k.payload, publishers: k.publishers})
	}
	for _, k := range ks {
		c, _ := val(mCommit, k)
		la, _ := val(mAppendLeader, k)
		fa, _ := val(mAppendFollower, k)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", fmt.Sprintf("%d B", k.payload), k.publishers,
			perAck(sysLiaison, k), perAck(sysJSAlways, k), fmtValue(c), fmtValue(la), fmtValue(fa), fmtValue(la+fa))
	}
	b.WriteString("\n")
	// The goal for the smallest publisher count: 2x JetStream's
	// throughput means half its time per acknowledgement.
	k := ks[0]
	js, ok := lookup(res, sysJSAlways, rowKey{metric: mThroughput, payload: k.payload, publishers: k.publishers})
	la, _ := val(mAppendLeader, k)
	fa, _ := val(mAppendFollower, k)
	if ok && js > 0 {
		half := float64(k.publishers) / js * 1000 / 2
		pubs := fmt.Sprintf("%d publishers", k.publishers)
		if k.publishers == 1 {
			pubs = "one publisher"
		}
		fmt.Fprintf(b, "Twice JetStream's throughput at %d B with %s means an acknowledgement every %s ms per publisher; "+
			"the leader's and a follower's Raft log appends alone took %s ms in this run.\n\n",
			k.payload, pubs, fmtValue(half), fmtValue(la+fa))
	}
}
