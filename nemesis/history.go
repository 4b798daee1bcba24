package nemesis

import (
	"sync"
	"time"
)

// Outcome is what a publisher learned about one publish.
type Outcome int

// Publish outcomes.
const (
	// Acked: the relay acknowledged the publish at Seq.
	Acked Outcome = iota
	// Failed: the relay refused it definitely; it must not be in any log.
	Failed
	// Unknown: no answer (timeout, client closed): it may or may not be in
	// the log, at most once.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// PublishRecord is one publish attempt. Values are unique across a run.
type PublishRecord struct {
	Client  int
	Op      string
	Value   string
	Call    time.Duration // since the start of the run
	Return  time.Duration
	Outcome Outcome
	Seq     uint64 // when Acked
	Err     string
}

// Delivery is one entry a subscriber received.
type Delivery struct {
	Seq   uint64
	Value string
	Chain [32]byte
	At    time.Duration
}

// SubscriberRecord is everything one subscriber received, in order.
type SubscriberRecord struct {
	ID         int
	Op         string
	From       uint64
	Deliveries []Delivery
	Err        string // why the subscription ended early, if it did
}

// Entry is one entry of a node's final log.
type Entry struct {
	Seq   uint64
	Value string
	Chain [32]byte
}

// StatusObservation is one poll of a node's /cluster/status.
type StatusObservation struct {
	At       time.Duration
	Node     string
	State    string
	Term     uint64
	LeaderID string
}

// Election is a "election won" line of a node's raft log.
type Election struct {
	Node string
	Term uint64
}

// Fault is one fault the nemesis injected.
type Fault struct {
	At     time.Duration
	Healed time.Duration
	Kind   string
	Target string
	Err    string // the fault could not be applied (or healed) fully
}

// History is everything a run recorded. The checker reads only this, so it
// can be tested on histories written by hand.
type History struct {
	Publishes   []PublishRecord
	Subscribers []SubscriberRecord
	// Logs holds each node's final log per operation: node -> op -> entries.
	Logs     map[string]map[string][]Entry
	Statuses []StatusObservation
	// Elections from the nodes' logs; nil when not collected.
	Elections []Election
	Faults    []Fault
	// Crashes lists node exits the nemesis did not cause and data races
	// or panics found in the nodes' logs.
	Crashes []string
}

// recorder collects a History from many goroutines.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	h     History
	// onHeal, if set, is told about each fault when it is healed.
	onHeal func(f Fault, healed time.Duration, err error)
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), h: History{Logs: make(map[string]map[string][]Entry)}}
}

func (r *recorder) now() time.Duration { return time.Since(r.start) }

func (r *recorder) publish(p PublishRecord) {
	r.mu.Lock()
	r.h.Publishes = append(r.h.Publishes, p)
	r.mu.Unlock()
}

func (r *recorder) subscriber(s SubscriberRecord) {
	r.mu.Lock()
	r.h.Subscribers = append(r.h.Subscribers, s)
	r.mu.Unlock()
}

func (r *recorder) status(s StatusObservation) {
	r.mu.Lock()
	r.h.Statuses = append(r.h.Statuses, s)
	r.mu.Unlock()
}

// fault records f and returns its index, for heal.
func (r *recorder) fault(f Fault) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.At = r.now()
	r.h.Faults = append(r.h.Faults, f)
	return len(r.h.Faults) - 1
}

func (r *recorder) healed(i int, err error) {
	r.mu.Lock()
	f := &r.h.Faults[i]
	f.Healed = r.now()
	if err != nil {
		if f.Err != "" {
			f.Err += "; "
		}
		f.Err += err.Error()
	}
	done, hook := *f, r.onHeal
	r.mu.Unlock()
	if hook != nil {
		hook(done, done.Healed, err)
	}
}

func (r *recorder) history() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h
}
