package tui

import (
	"context"
	"errors"
	"time"

	"liaison/clients/session"
	"liaison/relay/wire"
)

// presenceTimeout bounds the relay's answer about who has a task.
const presenceTimeout = 3 * time.Second

// Ack implements Backend: it acknowledges task id of op with state, on
// op's pump (an acknowledgement syncs the operation first).
func (e *Engine) Ack(op, id string, state TaskState) error {
	return e.do(op, func(ctx context.Context) error {
		_, err := e.s.AckTask(ctx, op, id, state, "")
		return err
	})
}

// SendTask implements Backend: it sends a task to op (centre and admin
// members only).
func (e *Engine) SendTask(op string, priority wire.Class, text string) error {
	return e.do(op, func(ctx context.Context) error {
		_, err := e.s.SendTask(ctx, op, priority, text, session.TaskOptions{})
		return err
	})
}

// emitTasks sends op's tasks as this member sees them. For tasks the user
// sent, the relay's delivery table says who has them (when it answers).
func (e *Engine) emitTasks(op string) {
	ts, err := e.s.Tasks(op, nil)
	if err != nil {
		if !errors.Is(err, session.ErrNoState) {
			e.emit(NoticeMsg{Op: op, Text: "tasks: " + err.Error()})
		}
		return
	}
	own := false
	for _, t := range ts {
		own = own || t.Sender == e.self
	}
	if own {
		ctx, cancel := context.WithTimeout(e.ctx, presenceTimeout)
		p, err := e.s.Presence(ctx, op)
		cancel()
		if err == nil {
			session.ApplyDelivery(ts, p.Delivered())
		}
	}
	e.emit(TasksMsg{Op: op, Tasks: tasksFor(op, ts, e.self)})
}

// tasksFor turns task statuses into the model's tasks: those the user sent,
// and those addressed to the user (as a member of the roster).
func tasksFor(op string, ts []session.TaskStatus, self [32]byte) []Task {
	var out []Task
	for _, s := range ts {
		t := Task{Op: op, ID: s.ID.String(), Short: s.ID.Short(), Seq: s.Seq, From: s.SenderName, Verified: true, Priority: s.Priority, Text: s.Text,
			TimeMS: s.SentAt.UnixMilli(), Own: s.Sender == self, Members: len(s.Members)}
		if !s.Due.IsZero() {
			t.DueMS = s.Due.UnixMilli()
		}
		if t.Own {
			t.Received, t.AckedBy, t.OverdueCount = s.Counts()
			out = append(out, t)
			continue
		}
		for _, m := range s.Members {
			if m.Member == self {
				t.State, t.Overdue = m.State, m.Overdue
				out = append(out, t)
				break
			}
		}
	}
	return out
}
