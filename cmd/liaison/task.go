package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"liaison/clients/session"
)

// cmdTask implements `liaison task send|ack|status`.
func cmdTask(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: task needs send, ack or status", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "send":
		return cmdTaskSend(ctx, e, rest)
	case "ack":
		return cmdTaskAck(ctx, e, rest)
	case "status":
		return cmdTaskStatus(ctx, e, rest)
	default:
		return fmt.Errorf("%w: unknown task command %q", errUsage, sub)
	}
}

// cmdTaskSend implements `liaison task send OP --priority P [--due TIME] TEXT...`.
func cmdTaskSend(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("task send")
	priority := fs.String("priority", "", "flash|immediate|routine (required)")
	due := fs.String("due", "", "due time: RFC 3339, \"2006-01-02 15:04\", \"15:04\" (next such time) or a duration from now (\"45m\")")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the ack after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: task send needs OP and TEXT", errUsage)
	}
	op, text := pos[0], strings.Join(pos[1:], " ")
	if err := checkOp(op); err != nil {
		return err
	}
	if *priority == "" {
		return fmt.Errorf("%w: task send needs --priority flash|immediate|routine", errUsage)
	}
	class, err := parsePriority(*priority)
	if err != nil {
		return err
	}
	var o session.TaskOptions
	if *due != "" {
		if o.Due, err = parseDue(*due, time.Now()); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, done, err := e.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.SendTask(ctx, op, class, text, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "task %s sent to %s seq %d (%s)\n", res.ID.Short(), op, res.Seq, class)
	return nil
}

// parseDue parses an absolute time (RFC 3339, "2006-01-02 15:04" local),
// a clock time "15:04" (the next such local time) or a duration from now.
func parseDue(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("15:04", s, time.Local); err == nil {
		y, m, d := now.Date()
		at := time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, time.Local)
		if !at.After(now) {
			at = at.AddDate(0, 0, 1)
		}
		return at, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "+")); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%w: --due %q: use RFC 3339, \"2006-01-02 15:04\", \"15:04\" or a duration like 45m", errUsage, s)
}

// cmdTaskAck implements `liaison task ack OP TASK --state S [--note TEXT]`.
func cmdTaskAck(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("task ack")
	state := fs.String("state", "", "received|understood|done|unable (required)")
	note := fs.String("note", "", "optional note")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the ack after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: task ack needs OP and TASK (its id, an id prefix, or its sequence)", errUsage)
	}
	op, task := pos[0], pos[1]
	if err := checkOp(op); err != nil {
		return err
	}
	st, err := session.ParseAckState(*state)
	if err != nil {
		return fmt.Errorf("%w: --state: %v", errUsage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, done, err := e.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.AckTask(ctx, op, task, st, *note)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "acknowledged %s in %s as %s, seq %d\n", task, op, st, res.Seq)
	return nil
}

// cmdTaskStatus implements `liaison task status OP... | --all`.
func cmdTaskStatus(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("task status")
	all := fs.Bool("all", false, "every operation with local state")
	summary := fs.Bool("summary", false, "one line per task, without the member table")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkOpsArg(pos, *all); err != nil {
		return err
	}
	s, done, err := e.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	ops, err := opsArg(s, pos, *all)
	if err != nil {
		return err
	}
	if _, err := s.SyncAll(ctx, ops); err != nil {
		return err
	}
	now := time.Now()
	for i, op := range ops {
		var delivery session.Delivery
		if p, err := s.Presence(ctx, op); err == nil {
			delivery = p.Delivered()
		} else {
			fmt.Fprintf(e.stderr, "liaison: warning: %s: delivery table unavailable: %v\n", op, err)
		}
		tasks, err := s.Tasks(op, delivery)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		printTasks(e.stdout, op, tasks, now, *summary)
	}
	return nil
}

// checkOpsArg checks the operations named on the command line against
// --all: one or more valid names, or --all alone.
func checkOpsArg(pos []string, all bool) error {
	for _, op := range pos {
		if err := checkOp(op); err != nil {
			return err
		}
	}
	if all == (len(pos) > 0) {
		return fmt.Errorf("%w: name one or more operations, or --all", errUsage)
	}
	return nil
}

// opsArg returns the operations named on the command line (checked by
// checkOpsArg), each once, or with all every operation with local state.
func opsArg(s *session.Session, pos []string, all bool) ([]string, error) {
	if all {
		infos, err := s.Ops()
		if err != nil {
			return nil, err
		}
		var ops []string
		for _, in := range infos {
			if in.Member {
				ops = append(ops, in.Op)
			}
		}
		if len(ops) == 0 {
			return nil, fmt.Errorf("no operations with local state")
		}
		return ops, nil
	}
	seen := map[string]bool{}
	var ops []string
	for _, op := range pos {
		if !seen[op] {
			seen[op] = true
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// printTasks prints op's tasks: a line per task with its counts, then
// (unless summary) a row per member: delivered, state, when, note, overdue.
func printTasks(w io.Writer, op string, tasks []session.TaskStatus, now time.Time, summary bool) {
	fmt.Fprintf(w, "operation %s: %d task(s)\n", op, len(tasks))
	for _, t := range tasks {
		due := "-"
		if !t.Due.IsZero() {
			due = t.Due.Local().Format("2006-01-02 15:04")
			if now.After(t.Due) {
				due += " (past)"
			}
		}
		d, a, o := t.Counts()
		n := len(t.Members)
		fmt.Fprintf(w, "\ntask %s  seq %d  %s  due %s  from %s\n  %s\n", t.ID.Short(), t.Seq, t.Priority, due, sanitize(t.SenderName), sanitize(t.Text))
		fmt.Fprintf(w, "  delivered %d/%d  acknowledged %d/%d  overdue %d\n", d, n, a, n, o)
		if summary {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tROLE\tDELIVERED\tSTATE\tAT\tOVERDUE\tNOTE")
		for _, m := range t.Members {
			del := "?"
			switch {
			case m.DeliveryKnown && m.Delivered:
				del = "yes"
			case m.DeliveryKnown:
				del = "no"
			}
			at := "-"
			if m.State != session.AckNone {
				at = m.AckAt.Local().Format("15:04:05")
			}
			over := ""
			if m.Overdue {
				over = "OVERDUE"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize(m.Name), m.Role, del, m.State, at, over, sanitize(m.Note))
		}
		tw.Flush()
	}
}
