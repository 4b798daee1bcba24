//go:build js && wasm

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"syscall/js"
	"time"

	"liaison/clients/session"
)

// sendTask(op, priority, text, dueMinutes) sends a task to everyone in op
// (centre and admin members only; the relay and every client enforce it).
func (a *app) sendTask(args []js.Value) (any, error) {
	op, prio, text := arg(args, 0), arg(args, 1), strings.TrimSpace(arg(args, 2))
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	class, err := session.ParsePriority(prio)
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, errors.New("empty task")
	}
	var o session.TaskOptions
	if len(args) > 3 && args[3].Type() == js.TypeNumber && args[3].Float() > 0 {
		o.Due = time.Now().Add(time.Duration(args[3].Float() * float64(time.Minute)))
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	r, err := act.SendTask(ctx, op, class, text, o)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": r.ID.String(), "seq": r.Seq}, nil
}

// ackTask(op, taskID, state) acknowledges a task: received, understood,
// done or unable.
func (a *app) ackTask(args []js.Value) (any, error) {
	op, id, stateName := arg(args, 0), arg(args, 1), arg(args, 2)
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	state, err := session.ParseAckState(stateName)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	r, err := act.AckTask(ctx, op, id, state, "")
	if err != nil {
		return nil, err
	}
	return map[string]any{"seq": r.Seq}, nil
}

// tasks(op) returns op's tasks, flash first then newest first, each with
// where every member stands: delivered (from the relay's delivery table),
// acknowledged (signed acknowledgements in the log), overdue.
func (a *app) tasks(args []js.Value) (any, error) {
	op := arg(args, 0)
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	ts, err := act.TaskStatus(ctx, op)
	if err != nil {
		return nil, err
	}
	self := a.id.PublicKey()
	out := make([]any, 0, len(ts))
	for _, t := range ts {
		members := make([]any, 0, len(t.Members))
		mine := ""
		for _, m := range t.Members {
			if m.Member == self {
				mine = stateName(m.State)
			}
			members = append(members, map[string]any{
				"name": m.Name, "role": m.Role.String(), "self": m.Member == self,
				"delivered": m.Delivered, "deliveryKnown": m.DeliveryKnown,
				"state": stateName(m.State), "ackAt": unixMS(m.AckAt), "overdue": m.Overdue,
			})
		}
		delivered, acked, overdue := t.Counts()
		out = append(out, map[string]any{
			"id": hex.EncodeToString(t.ID[:]), "seq": t.Seq, "sender": t.SenderName, "mine": t.Sender == self,
			"priority": t.Priority.String(), "rank": int(t.Priority), "text": t.Text,
			"sentAt": unixMS(t.SentAt), "due": unixMS(t.Due), "myState": mine,
			"delivered": delivered, "acked": acked, "overdue": overdue, "members": members,
		})
	}
	return out, nil
}

func stateName(s session.AckState) string {
	if s == session.AckNone {
		return ""
	}
	return s.String()
}

func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
