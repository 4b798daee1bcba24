package nemesis

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// cleanHistory is a history with no anomaly: five publishes to "a", acked
// one after the other at 1..5, an unknown one that committed at 6 and one
// that did not, three identical node logs, and a subscriber that read it
// all while it was written.
func cleanHistory() History {
	h := History{Logs: make(map[string]map[string][]Entry)}
	var log []Entry
	var chain [32]byte
	ms := time.Millisecond
	for i := 1; i <= 5; i++ {
		v := fmt.Sprintf("v%d", i)
		h.Publishes = append(h.Publishes, PublishRecord{Client: i % 2, Op: "a", Value: v, Call: time.Duration(10*i) * ms, Return: time.Duration(10*i+5) * ms, Outcome: Acked, Seq: uint64(i)})
		chain = chainNext(chain, v)
		log = append(log, Entry{Seq: uint64(i), Value: v, Chain: chain})
	}
	h.Publishes = append(h.Publishes,
		PublishRecord{Client: 2, Op: "a", Value: "u6", Call: 60 * ms, Return: 80 * ms, Outcome: Unknown, Err: "timeout"},
		PublishRecord{Client: 3, Op: "a", Value: "u7", Call: 61 * ms, Return: 81 * ms, Outcome: Unknown, Err: "timeout"},
		PublishRecord{Client: 4, Op: "a", Value: "f8", Call: 62 * ms, Return: 63 * ms, Outcome: Failed, Err: "refused"})
	chain = chainNext(chain, "u6")
	log = append(log, Entry{Seq: 6, Value: "u6", Chain: chain})
	for _, n := range []string{"n1", "n2", "n3"} {
		h.Logs[n] = map[string][]Entry{"a": slices.Clone(log)}
	}
	s := SubscriberRecord{ID: 0, Op: "a", From: 1}
	for _, e := range log {
		s.Deliveries = append(s.Deliveries, Delivery{Seq: e.Seq, Value: e.Value, Chain: e.Chain, At: time.Duration(10*e.Seq+7) * ms})
	}
	h.Subscribers = []SubscriberRecord{s}
	h.Statuses = []StatusObservation{{Node: "n1", State: "Leader", Term: 2}, {Node: "n2", State: "Follower", Term: 2, LeaderID: "n1"}}
	h.Elections = []Election{{Node: "n1", Term: 2}, {Node: "n2", Term: 3}}
	h.Faults = []Fault{{Kind: FaultKillLeader, Target: "n1"}}
	return h
}

var checkOpts = CheckOptions{LinearizabilityTimeout: 10 * time.Second}

func TestCheckCleanHistory(t *testing.T) {
	r := Check(cleanHistory(), checkOpts)
	if r.Anomalies() != 0 {
		t.Fatalf("clean history reported anomalies:\n%s", r)
	}
	if r.Attempted != 8 || r.Acked != 5 || r.Unknown != 2 || r.Failed != 1 || r.UnknownCommitted != 1 || r.ReadToEnd != 1 || r.Terms != 2 || r.FaultsByKind[FaultKillLeader] != 1 {
		t.Fatalf("figures wrong:\n%s", r)
	}
}

// Each case breaks the clean history in one way; the checker must count
// that anomaly.
func TestCheckFindsEachAnomaly(t *testing.T) {
	setLog := func(h *History, node string, f func([]Entry) []Entry) {
		h.Logs[node]["a"] = f(slices.Clone(h.Logs[node]["a"]))
	}
	rechain := func(l []Entry) []Entry {
		var c [32]byte
		for i := range l {
			c = chainNext(c, l[i].Value)
			l[i].Chain = c
		}
		return l
	}
	allLogs := func(h *History, f func([]Entry) []Entry) {
		for n := range h.Logs {
			setLog(h, n, f)
		}
	}
	cases := []struct {
		name   string
		break_ func(h *History)
		count  func(r *Report) int
	}{
		{"acked entry lost on every node", func(h *History) {
			allLogs(h, func(l []Entry) []Entry {
				l = append(l[:2:2], l[3:]...)
				for i := range l {
					l[i].Seq = uint64(i + 1)
				}
				return rechain(l)
			})
			h.Subscribers = nil
		}, func(r *Report) int { return r.Lost }},
		{"acked entry lost on one node", func(h *History) {
			setLog(h, "n3", func(l []Entry) []Entry { return l[:4] })
		}, func(r *Report) int { return r.Lost }},
		{"acked entry missing from a subscriber that read to the end", func(h *History) {
			s := &h.Subscribers[0]
			s.From = 1
			d := s.Deliveries
			s.Deliveries = append(d[:2:2], d[3:]...)
		}, func(r *Report) int { return r.Lost }},
		{"entry never published", func(h *History) {
			allLogs(h, func(l []Entry) []Entry { return rechain(append(l, Entry{Seq: 7, Value: "ghost"})) })
		}, func(r *Report) int { return r.Unexpected }},
		{"refused publish stored", func(h *History) {
			allLogs(h, func(l []Entry) []Entry { return rechain(append(l, Entry{Seq: 7, Value: "f8"})) })
		}, func(r *Report) int { return r.Unexpected }},
		{"duplicate in a log", func(h *History) {
			allLogs(h, func(l []Entry) []Entry { return rechain(append(l, Entry{Seq: 7, Value: "v2"})) })
		}, func(r *Report) int { return r.Duplicates }},
		{"duplicate in a subscriber's stream", func(h *History) {
			s := &h.Subscribers[0]
			d := s.Deliveries[1]
			d.Seq = 7
			s.Deliveries = append(s.Deliveries, d)
		}, func(r *Report) int { return r.Duplicates }},
		{"acked at one sequence, stored at another", func(h *History) {
			h.Publishes[1].Seq, h.Publishes[2].Seq = 3, 2
		}, func(r *Report) int { return r.Misplaced }},
		{"one node's log in another order", func(h *History) {
			setLog(h, "n2", func(l []Entry) []Entry {
				l[0].Value, l[1].Value = l[1].Value, l[0].Value
				return rechain(l)
			})
		}, func(r *Report) int { return r.Divergent }},
		{"chain that does not follow", func(h *History) {
			allLogs(h, func(l []Entry) []Entry { l[3].Chain[0] ^= 1; return l })
		}, func(r *Report) int { return r.ChainErrors }},
		{"log numbered with a gap", func(h *History) {
			allLogs(h, func(l []Entry) []Entry { l[5].Seq = 7; return l })
		}, func(r *Report) int { return r.LogGaps }},
		{"subscriber skipped an entry", func(h *History) {
			s := &h.Subscribers[0]
			s.Deliveries = append(s.Deliveries[:1:1], s.Deliveries[2:]...)
		}, func(r *Report) int { return r.SubscriberGaps }},
		{"subscriber saw something else than the log", func(h *History) {
			h.Subscribers[0].Deliveries[2].Value = "v9"
		}, func(r *Report) int { return r.SubscriberMismatch }},
		{"subscription ended with an error", func(h *History) {
			h.Subscribers[0].Err = "chain mismatch"
		}, func(r *Report) int { return r.SubscriberErrors }},
		{"two leaders in one term (status)", func(h *History) {
			h.Statuses = append(h.Statuses, StatusObservation{Node: "n3", State: "Leader", Term: 2})
		}, func(r *Report) int { return r.LeaderConflicts }},
		{"two leaders in one term (election log)", func(h *History) {
			h.Elections = append(h.Elections, Election{Node: "n1", Term: 3})
		}, func(r *Report) int { return r.LeaderConflicts }},
		{"node crashed", func(h *History) {
			h.Crashes = append(h.Crashes, "n2: WARNING: DATA RACE")
		}, func(r *Report) int { return r.Crashes }},
		{"ack of a later publish at an earlier sequence (not linearizable)", func(h *History) {
			// v5 was called after v1 returned, yet the log (and its ack)
			// put it first: every node agrees, nothing is lost, only real
			// time order is broken.
			allLogs(h, func(l []Entry) []Entry {
				l[0].Value, l[4].Value = l[4].Value, l[0].Value
				return rechain(l)
			})
			h.Publishes[0].Seq, h.Publishes[4].Seq = 5, 1
			h.Subscribers = nil
		}, func(r *Report) int { return r.NotLinearizable }},
		{"delivered before it was published (not linearizable)", func(h *History) {
			h.Subscribers[0].Deliveries[4].At = 40 * time.Millisecond // v5 called at 50 ms
		}, func(r *Report) int { return r.NotLinearizable }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cleanHistory()
			tc.break_(&h)
			r := Check(h, checkOpts)
			if tc.count(r) == 0 || r.Anomalies() == 0 {
				t.Fatalf("not detected:\n%s", r)
			}
		})
	}
}

// The report names its figures so that docs/reliability.md can quote it.
func TestReportString(t *testing.T) {
	r := Check(cleanHistory(), checkOpts)
	s := r.String()
	for _, want := range []string{"publishes attempted 8, acked 5", "kill-leader 1", "lost 0", "anomalies 0"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
