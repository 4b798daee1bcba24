package main

import (
	"math"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x y\n# TYPE x counter\n" +
		"liaison_commit_seconds_sum 1.5\nliaison_commit_seconds_count 3\n" +
		`liaison_raft_state{state="Leader"} 1` + "\nbad line\nnovalue \n"))
	if err != nil {
		t.Fatal(err)
	}
	if m[seriesCommitSum] != 1.5 || m[seriesCommitCount] != 3 || m[seriesLeader] != 1 || len(m) != 3 {
		t.Fatalf("parsed %v", m)
	}
}

func TestBreakdown(t *testing.T) {
	node := func(leader, commitSum, commitCount, appendSum, appendCount float64) map[string]float64 {
		return map[string]float64{seriesLeader: leader, seriesCommitSum: commitSum, seriesCommitCount: commitCount,
			seriesAppendSum: appendSum, seriesAppendCount: appendCount}
	}
	before := []map[string]float64{node(0, 0, 0, 1, 10), node(1, 2, 10, 1, 10), node(0, 0, 0, 1, 10)}
	after := []map[string]float64{node(0, 0, 0, 1.4, 20), node(1, 2.5, 20, 1.3, 20), node(0, 0, 0, 1.8, 30)}
	b, ok := breakdown(before, after)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// commit 0.5 s / 10; leader append 0.3 s / 10; followers 1.2 s / 30.
	if !ok || !near(b.commit, 50) || !near(b.leaderAppend, 30) || !near(b.followerAppend, 40) {
		t.Fatalf("breakdown %+v %v", b, ok)
	}
	// A leader change in between: no figure.
	after[1][seriesLeader], after[0][seriesLeader] = 0, 1
	if _, ok := breakdown(before, after); ok {
		t.Fatal("breakdown across a leader change")
	}
	// Nothing committed: no figure.
	if _, ok := breakdown(before, before); ok {
		t.Fatal("breakdown of an idle cluster")
	}
}
