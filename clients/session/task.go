package session

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"liaison/crypto"
	"liaison/relay/wire"
)

// AckState is what an officer answers to a task.
type AckState uint8

// Acknowledgement states (payload values).
const (
	AckNone       AckState = 0 // no acknowledgement yet
	AckReceived   AckState = 1
	AckUnderstood AckState = 2
	AckDone       AckState = 3
	AckUnable     AckState = 4
)

// Valid reports whether a is a state an acknowledgement may carry.
func (a AckState) Valid() bool { return a >= AckReceived && a <= AckUnable }

// Final reports whether a closes the task for its member (done or unable):
// such a member is never overdue.
func (a AckState) Final() bool { return a == AckDone || a == AckUnable }

func (a AckState) String() string {
	switch a {
	case AckNone:
		return "-"
	case AckReceived:
		return "received"
	case AckUnderstood:
		return "understood"
	case AckDone:
		return "done"
	case AckUnable:
		return "unable"
	}
	return fmt.Sprintf("state(%d)", uint8(a))
}

// ParseAckState parses received, understood, done or unable.
func ParseAckState(s string) (AckState, error) {
	for a := AckReceived; a <= AckUnable; a++ {
		if s == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("session: state must be received, understood, done or unable, not %q", s)
}

// ParsePriority parses a task's priority as wire.Class.String names it:
// routine, immediate or flash.
func ParsePriority(s string) (wire.Class, error) {
	for c := wire.ClassRoutine; c <= wire.MaxClass; c++ {
		if s == c.String() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("session: priority must be routine, immediate or flash, not %q", s)
}

// TaskID identifies a task: random bytes chosen by its sender, inside the
// signed, encrypted payload.
type TaskID [TaskIDLen]byte

// String returns the id in hex.
func (id TaskID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, as the CLI shows it.
func (id TaskID) Short() string { return hex.EncodeToString(id[:4]) }

// TaskOptions are the optional parts of a task.
type TaskOptions struct {
	// Due is when the task should be done; zero means no due time.
	Due time.Time
}

// TaskResult is the outcome of SendTask.
type TaskResult struct {
	ID TaskID
	SendResult
}

// ErrNoTask is returned by AckTask for a task id not in the history.
var ErrNoTask = errors.New("session: no such task")

// SendTask sends a task to op: an end-to-end encrypted payload published as
// a wire.KindTask entry whose wire.Class is the priority (the relay sees
// only the class and delivers flash first). Only centre and admin members
// may send tasks; other members' clients ignore tasks from anyone else.
func (s *Session) SendTask(ctx context.Context, op string, priority wire.Class, text string, o TaskOptions) (TaskResult, error) {
	if priority > wire.MaxClass {
		return TaskResult{}, fmt.Errorf("session: unknown priority %d", priority)
	}
	var id TaskID
	if _, err := io.ReadFull(s.opts.Rand, id[:]); err != nil {
		return TaskResult{}, err
	}
	var due int64
	if !o.Due.IsZero() {
		if due = o.Due.UnixMilli(); due <= 0 {
			return TaskResult{}, fmt.Errorf("session: due time %v out of range", o.Due)
		}
	}
	p := pendingMsg{Kind: uint8(wire.KindTask), Class: uint8(priority), Type: TypeTask, Text: text, TaskID: id[:], DueMS: due}
	res, err := s.send(ctx, op, p, func(oc *opCtx, _ *pendingMsg) error {
		r := oc.currentRoster()
		if oc.g == nil || !oc.g.IsMember() || r == nil {
			return fmt.Errorf("%w: %s", ErrNotMember, op)
		}
		if m, ok := r.Member(s.self); !ok || !mayTask(m.Role) {
			return fmt.Errorf("%w: only centre and admin members send tasks", ErrForbidden)
		}
		return nil
	})
	return TaskResult{ID: id, SendResult: res}, err
}

// ErrForbidden is returned when the roster does not allow this identity
// the action.
var ErrForbidden = errors.New("session: not allowed by the roster")

func mayTask(r crypto.Role) bool { return r == crypto.RoleAdmin || r == crypto.RoleCentre }

// AckTask acknowledges task (its TaskID in hex, a unique prefix of at
// least 4 hex digits, or its log sequence: a decimal number of fewer than 8
// digits is taken as a sequence) of op with state and an optional note: a
// signed, encrypted message with the task's priority as its class. The
// latest acknowledgement of a member counts.
func (s *Session) AckTask(ctx context.Context, op, task string, state AckState, note string) (SendResult, error) {
	if !state.Valid() {
		return SendResult{}, fmt.Errorf("session: invalid state %d", state)
	}
	p := pendingMsg{Type: TypeAck, Text: note, TaskID: make([]byte, TaskIDLen), State: uint8(state)}
	return s.send(ctx, op, p, func(oc *opCtx, p *pendingMsg) error {
		e, err := findTask(oc.st.Entries, task)
		if err != nil {
			return err
		}
		p.TaskID, p.Class = e.TaskID, uint8(e.Priority)
		return nil
	})
}

// findTask finds a tracked task entry by id, hex prefix (at least 4 hex
// digits) or sequence.
func findTask(entries []Entry, ref string) (*Entry, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if ref == "" {
		return nil, fmt.Errorf("%w: empty task reference", ErrNoTask)
	}
	var found *Entry
	if seq, err := strconv.ParseUint(ref, 10, 64); err == nil && len(ref) < 8 {
		for i := range entries {
			if e := &entries[i]; e.Seq == seq && isTask(e) {
				return e, nil
			}
		}
		return nil, fmt.Errorf("%w: no task at sequence %d", ErrNoTask, seq)
	}
	if len(ref) < 4 {
		return nil, fmt.Errorf("%w: task id %q too short (4 hex digits at least)", ErrNoTask, ref)
	}
	for i := range entries {
		e := &entries[i]
		if isTask(e) && strings.HasPrefix(hex.EncodeToString(e.TaskID), ref) {
			if found != nil && subtle.ConstantTimeCompare(found.TaskID, e.TaskID) != 1 {
				return nil, fmt.Errorf("%w: %q names several tasks", ErrNoTask, ref)
			}
			if found == nil {
				found = e
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoTask, ref)
	}
	return found, nil
}

func isTask(e *Entry) bool {
	return e.Type == TypeTask && len(e.TaskID) == TaskIDLen && (e.Kind == EntryMessage || e.Kind == EntryOwn)
}

func isAck(e *Entry) bool {
	return e.Type == TypeAck && len(e.TaskID) == TaskIDLen && e.State.Valid() && (e.Kind == EntryMessage || e.Kind == EntryOwn)
}

// checkTasking enforces the tasking rules on a decrypted entry of wire
// kind k: a task must come as a task entry from a centre or admin member,
// an ack as a message; a task entry must hold a task. An entry that breaks
// them keeps a warning and loses its TaskID, so it is not tracked.
func checkTasking(oc *opCtx, k wire.Kind, e *Entry) {
	if e.Kind != EntryMessage && e.Kind != EntryOwn {
		return
	}
	var problem string
	switch {
	case e.Type == TypeTask && k != wire.KindTask:
		problem = "a task sent as a plain message is not tracked"
	case e.Type == TypeTask && e.Kind == EntryMessage && !senderMayTask(oc, e.Sender):
		problem = "a task from a member who is neither centre nor admin is not tracked"
	case e.Type == TypeAck && k != wire.KindMessage:
		problem = "an acknowledgement sent as a task entry is not tracked"
	case k == wire.KindTask && e.Type != TypeTask:
		problem = fmt.Sprintf("a task entry holding a %q payload", e.Type)
	}
	if problem != "" {
		e.TaskID = nil
		e.Warnings = append(e.Warnings, problem)
	}
}

func senderMayTask(oc *opCtx, sender []byte) bool {
	r := oc.currentRoster()
	if r == nil || len(sender) != 32 {
		return false
	}
	m, ok := r.Member([32]byte(sender))
	return ok && mayTask(m.Role)
}

// MemberTask is one roster member's view of one task.
type MemberTask struct {
	Member [32]byte
	Name   string
	Role   crypto.Role
	// Delivered: the relay reports that a device of this member was sent
	// the task's entry (relay metadata; DeliveryKnown false when the
	// relay's delivery table was not consulted or does not know the
	// member). An acknowledgement implies delivery and sets it too.
	Delivered     bool
	DeliveryKnown bool
	// State is the member's latest acknowledgement (AckNone if none),
	// with its note, log sequence and the sender's time.
	State  AckState
	Note   string
	AckSeq uint64
	AckAt  time.Time
	// Overdue: the task has a due time that has passed and this member
	// has not answered done or unable.
	Overdue bool
}

// TaskStatus is one task of an operation and where every member stands.
type TaskStatus struct {
	ID         TaskID
	Seq        uint64 // the task's log sequence
	Sender     [32]byte
	SenderName string
	Priority   wire.Class
	SentAt     time.Time // sender's clock
	Due        time.Time // zero: no due time
	Text       string
	// Members lists every current roster member except the sender, in
	// roster order.
	Members []MemberTask
}

// Counts returns how many members have the task delivered, have
// acknowledged it (any state), and are overdue.
func (t *TaskStatus) Counts() (delivered, acked, overdue int) {
	for _, m := range t.Members {
		if m.Delivered {
			delivered++
		}
		if m.State != AckNone {
			acked++
		}
		if m.Overdue {
			overdue++
		}
	}
	return
}

// Delivery maps a member's identity key to the highest sequence of an
// operation that the relay reports writing to any of that member's
// devices.
type Delivery map[[32]byte]uint64

// Tasks computes op's tasks from local state (call Sync first for the
// latest), at the session's clock. delivery may be nil.
func (s *Session) Tasks(op string, delivery Delivery) ([]TaskStatus, error) {
	var out []TaskStatus
	err := s.readOp(op, func(oc *opCtx) error {
		r := oc.currentRoster()
		if r == nil {
			return ErrNoState
		}
		out = ComputeTasks(oc.st.Entries, r, delivery, s.opts.Now())
		return nil
	})
	return out, err
}

// ComputeTasks derives task statuses from an operation's history, its
// current roster, the relay's delivery table (may be nil) and the time now.
// The first task entry with a given id counts; a member's latest
// acknowledgement (in log order) of a task counts; acknowledgements from
// non-members and of unknown tasks are ignored.
func ComputeTasks(entries []Entry, r *crypto.Roster, delivery Delivery, now time.Time) []TaskStatus {
	var tasks []TaskStatus
	index := map[TaskID]int{}
	for i := range entries {
		e := &entries[i]
		switch {
		case isTask(e):
			id := TaskID(e.TaskID)
			if _, dup := index[id]; dup || len(e.Sender) != 32 {
				continue
			}
			t := TaskStatus{ID: id, Seq: e.Seq, Sender: [32]byte(e.Sender), SenderName: e.SenderName, Priority: e.Priority,
				SentAt: time.UnixMilli(e.TimeMS), Text: e.Text}
			if e.DueMS > 0 {
				t.Due = time.UnixMilli(e.DueMS)
			}
			for _, m := range r.Members {
				if m.Key == t.Sender {
					continue
				}
				t.Members = append(t.Members, MemberTask{Member: m.Key, Name: m.Name, Role: m.Role})
			}
			index[id] = len(tasks)
			tasks = append(tasks, t)
		case isAck(e):
			ti, ok := index[TaskID(e.TaskID)]
			if !ok || len(e.Sender) != 32 {
				continue
			}
			t := &tasks[ti]
			mi := slices.IndexFunc(t.Members, func(m MemberTask) bool { return m.Member == [32]byte(e.Sender) })
			if mi < 0 {
				continue
			}
			m := &t.Members[mi]
			m.State, m.Note, m.AckSeq, m.AckAt = e.State, e.Text, e.Seq, time.UnixMilli(e.TimeMS)
			m.Delivered, m.DeliveryKnown = true, true
		}
	}
	ApplyDelivery(tasks, delivery)
	for ti := range tasks {
		t := &tasks[ti]
		if t.Due.IsZero() || !now.After(t.Due) {
			continue
		}
		for mi := range t.Members {
			t.Members[mi].Overdue = !t.Members[mi].State.Final()
		}
	}
	return tasks
}

// ApplyDelivery marks in tasks the members that the relay's delivery table
// d reports: delivered if a device of theirs was sent the task's sequence.
// A member whose delivery is known already (an acknowledgement implies it)
// keeps it. Tasks(op, nil) followed by ApplyDelivery(ts, d) gives what
// Tasks(op, d) gives, without reading the state again.
func ApplyDelivery(tasks []TaskStatus, d Delivery) {
	for ti := range tasks {
		t := &tasks[ti]
		for mi := range t.Members {
			m := &t.Members[mi]
			if seq, ok := d[m.Member]; ok && !m.DeliveryKnown {
				m.DeliveryKnown, m.Delivered = true, seq >= t.Seq
			}
		}
	}
}
