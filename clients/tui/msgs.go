package tui

import (
	"liaison/clients"
	"liaison/clients/session"
	"liaison/relay/wire"
)

// HistoryMsg carries entries of an operation's history, in log order.
// Backlog entries come from local state (already seen); others arrived from
// the relay and count as unread in an operation that is not on screen.
type HistoryMsg struct {
	Op      string
	Entries []session.Entry
	Backlog bool
}

// OutboxMsg is an operation's outbox as the session holds it now: own
// messages typed but not yet seen in the log.
type OutboxMsg struct {
	Op    string
	Items []session.Queued
}

// InfoMsg describes an operation from local state: epoch, role, members.
type InfoMsg struct {
	Op         string
	Info       session.OpInfo
	Colleagues []Colleague
}

// ConnMsg is the relay connection's state.
type ConnMsg clients.Status

// NoticeMsg is a warning or error to show on the status line.
type NoticeMsg struct {
	Op   string
	Text string
}

// TasksMsg is the state of an operation's tasks as this member sees them.
type TasksMsg struct {
	Op    string
	Tasks []Task
}

// queuedMsg is the result of a Backend.Queue effect.
type queuedMsg struct {
	op  string
	q   session.Queued
	err error
}

// ackedMsg is the result of a Backend.Ack effect.
type ackedMsg struct {
	op, id string
	state  TaskState
	err    error
}

// taskSentMsg is the result of a Backend.SendTask effect.
type taskSentMsg struct {
	op  string
	err error
}

// Colleague is a member of an operation with fingerprint and safety
// number, as the session lists them.
type Colleague = session.Colleague

// TaskState is this member's latest acknowledgement of a task: the
// session's acknowledgement state.
type TaskState = session.AckState

// Task states.
const (
	TaskOpen       = session.AckNone // not acknowledged yet
	TaskReceived   = session.AckReceived
	TaskUnderstood = session.AckUnderstood // what ctrl+a answers
	TaskDone       = session.AckDone
	TaskUnable     = session.AckUnable
)

// Task is a task of an operation as this member sees it: one addressed to
// them, or one they sent.
type Task struct {
	Op       string
	ID       string // passed back to Backend.Ack
	Short    string // the id as shown (8 hex digits)
	Seq      uint64
	From     string
	Verified bool
	Priority wire.Class
	Text     string
	TimeMS   int64
	DueMS    int64 // 0: no due time
	// State is this member's latest acknowledgement; Overdue that the due
	// time passed without done or unable.
	State   TaskState
	Overdue bool
	// Own is true for tasks this member sent: Received, AckedBy and
	// OverdueCount count the Members who have it, acknowledged it, are
	// overdue (shown to centre staff).
	Own                                      bool
	Received, AckedBy, OverdueCount, Members int
}

// Backend is what the model asks of the world. Engine implements it.
type Backend interface {
	// Queue saves text as a message to op in the outbox (persisted, msgid
	// fixed) and has it sent as soon as the relay can be reached.
	Queue(op, text string, class wire.Class) (session.Queued, error)
	// Ack acknowledges task id of op with state.
	Ack(op, id string, state TaskState) error
	// SendTask sends a task to op.
	SendTask(op string, priority wire.Class, text string) error
}
