package nemesis

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Report is the checker's verdict on a History. Every anomaly count must be
// zero; the rest are figures.
type Report struct {
	// Figures.
	Attempted        int
	Acked            int
	Failed           int
	Unknown          int
	UnknownCommitted int // unknown outcomes found in the final log
	Deliveries       int
	Subscribers      int
	ReadToEnd        int // subscribers whose stream reached the final head
	Nodes            int
	Ops              int
	LogEntries       int // entries in the reference logs, all operations
	Terms            int // distinct terms with a known leader
	FaultsByKind     map[string]int
	FaultErrors      int // faults that could not be applied or healed fully

	// Anomalies.
	Lost               int // acked, but absent from a final log or from a subscriber that read to the end
	Unexpected         int // in a log but never attempted, or refused definitely
	Duplicates         int // a value twice in one log or one subscriber's stream
	Misplaced          int // acked at one sequence, stored at another
	Divergent          int // (node, operation) logs that differ from the others
	ChainErrors        int // chain values that do not follow from the entries
	LogGaps            int // log sequences not numbered 1, 2, 3, ...
	SubscriberGaps     int // deliveries that did not follow the previous one
	SubscriberMismatch int // deliveries that differ from the final log
	SubscriberErrors   int // subscriptions that ended with an error
	LeaderConflicts    int // terms with more than one leader
	NotLinearizable    int // operations whose history porcupine refuted
	Crashes            int // node exits the nemesis did not cause, races, panics

	// LinearizabilityUnknown counts operations porcupine could not decide
	// within its time limit (not an anomaly, but worth a look).
	LinearizabilityUnknown int
	// Examples describes the first anomalies found.
	Examples []string
}

// Anomalies is the sum of every anomaly count.
func (r *Report) Anomalies() int {
	return r.Lost + r.Unexpected + r.Duplicates + r.Misplaced + r.Divergent + r.ChainErrors + r.LogGaps +
		r.SubscriberGaps + r.SubscriberMismatch + r.SubscriberErrors + r.LeaderConflicts + r.NotLinearizable + r.Crashes
}

const maxExamples = 20

func (r *Report) example(format string, args ...any) {
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// String renders the report as the table docs/reliability.md shows.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "publishes attempted %d, acked %d, failed %d, unknown %d (%d of them committed)\n",
		r.Attempted, r.Acked, r.Failed, r.Unknown, r.UnknownCommitted)
	fmt.Fprintf(&b, "log entries %d in %d operations on %d nodes; %d subscribers, %d deliveries, %d read to the end; %d terms with a leader\n",
		r.LogEntries, r.Ops, r.Nodes, r.Subscribers, r.Deliveries, r.ReadToEnd, r.Terms)
	kinds := slices.Sorted(maps.Keys(r.FaultsByKind))
	total := 0
	var parts []string
	for _, k := range kinds {
		total += r.FaultsByKind[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, r.FaultsByKind[k]))
	}
	fmt.Fprintf(&b, "faults %d: %s (%d not fully applied)\n", total, strings.Join(parts, ", "), r.FaultErrors)
	fmt.Fprintf(&b, "lost %d, unexpected %d, duplicates %d, misplaced %d, divergent %d, chain errors %d, log gaps %d\n",
		r.Lost, r.Unexpected, r.Duplicates, r.Misplaced, r.Divergent, r.ChainErrors, r.LogGaps)
	fmt.Fprintf(&b, "subscriber gaps %d, subscriber mismatches %d, subscriber errors %d, leader conflicts %d, not linearizable %d (undecided %d), crashes %d\n",
		r.SubscriberGaps, r.SubscriberMismatch, r.SubscriberErrors, r.LeaderConflicts, r.NotLinearizable, r.LinearizabilityUnknown, r.Crashes)
	fmt.Fprintf(&b, "anomalies %d\n", r.Anomalies())
	for _, e := range r.Examples {
		fmt.Fprintf(&b, "  - %s\n", e)
	}
	return b.String()
}

// CheckOptions tunes Check.
type CheckOptions struct {
	// LinearizabilityTimeout bounds porcupine per operation; 0 skips the
	// linearizability check.
	LinearizabilityTimeout time.Duration
}

// Check verifies a history: see Report for what it counts.
func Check(h History, opt CheckOptions) *Report {
	r := &Report{FaultsByKind: make(map[string]int), Nodes: len(h.Logs), Subscribers: len(h.Subscribers)}
	for _, f := range h.Faults {
		r.FaultsByKind[f.Kind]++
		if f.Err != "" {
			r.FaultErrors++
		}
	}
	r.Crashes = len(h.Crashes)
	for _, c := range h.Crashes {
		r.example("crash: %s", c)
	}

	// What was attempted, by value.
	attempts := make(map[string]*PublishRecord, len(h.Publishes))
	for i := range h.Publishes {
		p := &h.Publishes[i]
		r.Attempted++
		switch p.Outcome {
		case Acked:
			r.Acked++
		case Failed:
			r.Failed++
		default:
			r.Unknown++
		}
		if prev, dup := attempts[p.Value]; dup {
			// The workload never reuses a value; a second record is a
			// harness bug, reported so it cannot hide anything.
			r.Duplicates++
			r.example("value %q attempted twice (%s, %s)", p.Value, prev.Outcome, p.Outcome)
			continue
		}
		attempts[p.Value] = p
	}

	// The reference log of each operation: the longest node log.
	ops := make(map[string]bool)
	for _, byOp := range h.Logs {
		for op := range byOp {
			ops[op] = true
		}
	}
	for _, p := range h.Publishes {
		ops[p.Op] = true
	}
	r.Ops = len(ops)
	nodes := slices.Sorted(maps.Keys(h.Logs))
	ref := make(map[string][]Entry)
	for op := range ops {
		for _, n := range nodes {
			if l := h.Logs[n][op]; len(l) > len(ref[op]) {
				ref[op] = l
			}
		}
		r.LogEntries += len(ref[op])
	}
	refPos := make(map[string]map[string]uint64) // op -> value -> seq in the reference
	for op, l := range ref {
		m := make(map[string]uint64, len(l))
		for _, e := range l {
			if _, ok := m[e.Value]; !ok {
				m[e.Value] = e.Seq
			}
		}
		refPos[op] = m
	}

	lost := make(map[string]bool)
	markLost := func(p *PublishRecord, where string) {
		if !lost[p.Value] {
			lost[p.Value] = true
			r.Lost++
			r.example("acked %s/%q (seq %d) missing from %s", p.Op, p.Value, p.Seq, where)
		}
	}

	// Every node's log, against the attempts and the reference.
	for _, n := range nodes {
		for op := range ops {
			l := h.Logs[n][op]
			seen := make(map[string]bool, len(l))
			var chain [32]byte
			for i, e := range l {
				if e.Seq != uint64(i+1) {
					r.LogGaps++
					r.example("%s %s: entry %d has sequence %d", n, op, i+1, e.Seq)
				}
				chain = chainNext(chain, e.Value)
				if chain != e.Chain {
					r.ChainErrors++
					r.example("%s %s: chain at %d does not follow from the entries", n, op, e.Seq)
					chain = e.Chain
				}
				if seen[e.Value] {
					r.Duplicates++
					r.example("%s %s: %q stored twice (again at %d)", n, op, e.Value, e.Seq)
				}
				seen[e.Value] = true
				p, ok := attempts[e.Value]
				switch {
				case !ok || p.Op != op:
					r.Unexpected++
					r.example("%s %s: %q at %d was never published to it", n, op, e.Value, e.Seq)
				case p.Outcome == Failed:
					r.Unexpected++
					r.example("%s %s: %q at %d was refused (%s) yet stored", n, op, e.Value, e.Seq, p.Err)
				case p.Outcome == Acked && p.Seq != e.Seq:
					r.Misplaced++
					r.example("%s %s: %q acked at %d, stored at %d", n, op, e.Value, p.Seq, e.Seq)
				}
			}
			if !slices.Equal(l, ref[op]) {
				r.Divergent++
				r.example("%s %s: log of %d entries differs from the longest (%d entries)", n, op, len(l), len(ref[op]))
			}
			for i := range h.Publishes {
				p := &h.Publishes[i]
				if p.Op == op && p.Outcome == Acked && !seen[p.Value] {
					markLost(p, "the log of "+n)
				}
			}
		}
	}
	for i := range h.Publishes {
		p := &h.Publishes[i]
		if p.Outcome == Unknown {
			if _, ok := refPos[p.Op][p.Value]; ok {
				r.UnknownCommitted++
			}
		}
	}

	// Subscribers.
	for _, s := range h.Subscribers {
		r.Deliveries += len(s.Deliveries)
		if s.Err != "" {
			r.SubscriberErrors++
			r.example("subscriber %d (%s): %s", s.ID, s.Op, s.Err)
		}
		seen := make(map[string]bool, len(s.Deliveries))
		next := s.From
		l := ref[s.Op]
		for _, d := range s.Deliveries {
			if d.Seq != next {
				r.SubscriberGaps++
				r.example("subscriber %d (%s): got %d, expected %d", s.ID, s.Op, d.Seq, next)
			}
			next = d.Seq + 1
			if seen[d.Value] {
				r.Duplicates++
				r.example("subscriber %d (%s): %q delivered twice (again at %d)", s.ID, s.Op, d.Value, d.Seq)
			}
			seen[d.Value] = true
			if d.Seq == 0 || d.Seq > uint64(len(l)) || l[d.Seq-1].Value != d.Value || l[d.Seq-1].Chain != d.Chain {
				r.SubscriberMismatch++
				r.example("subscriber %d (%s): seq %d is %q, not what the final log holds", s.ID, s.Op, d.Seq, d.Value)
			}
		}
		if len(l) > 0 && s.From == 1 && next == uint64(len(l))+1 {
			r.ReadToEnd++
			for i := range h.Publishes {
				p := &h.Publishes[i]
				if p.Op == s.Op && p.Outcome == Acked && !seen[p.Value] {
					markLost(p, fmt.Sprintf("subscriber %d, which read to the end", s.ID))
				}
			}
		}
	}

	// At most one leader per term: from status polls and from the raft
	// logs' "election won" lines.
	leaders := make(map[uint64]map[string]bool)
	add := func(term uint64, node string) {
		if leaders[term] == nil {
			leaders[term] = make(map[string]bool)
		}
		leaders[term][node] = true
	}
	for _, s := range h.Statuses {
		if s.State == "Leader" {
			add(s.Term, s.Node)
		}
	}
	for _, e := range h.Elections {
		add(e.Term, e.Node)
	}
	r.Terms = len(leaders)
	for _, term := range slices.Sorted(maps.Keys(leaders)) {
		if len(leaders[term]) > 1 {
			r.LeaderConflicts++
			r.example("term %d has leaders %v", term, slices.Sorted(maps.Keys(leaders[term])))
		}
	}

	if opt.LinearizabilityTimeout > 0 {
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			switch checkLinearizable(h, op, refPos[op], opt.LinearizabilityTimeout) {
			case porcupine.Illegal:
				r.NotLinearizable++
				r.example("%s: the publishes and deliveries are not linearizable as an append-only log", op)
			case porcupine.Unknown:
				r.LinearizabilityUnknown++
			}
		}
	}
	return r
}

// chainNext is the log's hash chain: SHA-256(prev || entry).
func chainNext(prev [32]byte, value string) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write([]byte(value))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Porcupine model of one operation's log: the state is its length. An
// append returning sequence s is legal only as the (s)th append; a delivery
// of sequence s at time t is a read that is legal only once s entries
// exist. Values are unique and the checks above tie each value to its
// sequence, so the length is all the model needs.
type lzInput struct {
	read bool
	seq  uint64 // append: the sequence it returned; read: the sequence delivered
}

var logModel = porcupine.Model{
	Init: func() any { return uint64(0) },
	Step: func(state, input, _ any) (bool, any) {
		n, in := state.(uint64), input.(lzInput)
		if in.read {
			return n >= in.seq, n
		}
		return in.seq == n+1, in.seq
	},
	DescribeOperation: func(input, _ any) string {
		in := input.(lzInput)
		if in.read {
			return fmt.Sprintf("read %d", in.seq)
		}
		return fmt.Sprintf("append -> %d", in.seq)
	},
}

// checkLinearizable builds op's porcupine history: acked publishes with the
// sequence they were acked at; publishes of unknown outcome that committed
// (at their sequence in the final log, still pending when the run ended);
// deliveries as reads at the moment they arrived.
func checkLinearizable(h History, op string, pos map[string]uint64, timeout time.Duration) porcupine.CheckResult {
	var hist []porcupine.Operation
	end := int64(math.MaxInt64 / 2)
	for _, p := range h.Publishes {
		if p.Op != op {
			continue
		}
		switch p.Outcome {
		case Acked:
			hist = append(hist, porcupine.Operation{ClientId: p.Client, Input: lzInput{seq: p.Seq}, Call: int64(p.Call), Return: int64(p.Return)})
		case Unknown:
			if s, ok := pos[p.Value]; ok {
				hist = append(hist, porcupine.Operation{ClientId: p.Client, Input: lzInput{seq: s}, Call: int64(p.Call), Return: end})
			}
		}
	}
	for _, s := range h.Subscribers {
		if s.Op != op {
			continue
		}
		for _, d := range s.Deliveries {
			hist = append(hist, porcupine.Operation{ClientId: 1 << 20, Input: lzInput{read: true, seq: d.Seq}, Call: int64(d.At), Return: int64(d.At)})
		}
	}
	sort.SliceStable(hist, func(i, j int) bool { return hist[i].Call < hist[j].Call })
	return porcupine.CheckOperationsTimeout(logModel, hist, timeout)
}
