package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"liaison/clients/session"
)

// cmdRead implements `liaison read NAME... | --all [--from N] [--follow]`:
// it syncs the local histories with the relay, prints them from N, and with
// --follow keeps printing new entries. Several operations share one relay
// connection; their lines are prefixed with the operation's name.
func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("read")
	from := fs.Uint64("from", 1, "first sequence to print")
	follow := fs.Bool("follow", false, "keep printing new entries until interrupted")
	all := fs.Bool("all", false, "every operation with local state")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if !*all && len(pos) == 0 {
		return fmt.Errorf("%w: read needs NAME (one or more) or --all", errUsage)
	}
	if *from == 0 {
		return fmt.Errorf("%w: --from must be at least 1", errUsage)
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
	prefix := func(op string) string {
		if len(ops) > 1 {
			return "[" + op + "] "
		}
		return ""
	}
	if _, err := s.SyncAll(ctx, ops); err != nil {
		return err
	}
	for _, op := range ops {
		hist, err := s.History(op, *from)
		if err != nil {
			return err
		}
		for _, en := range hist {
			printEntry(e, prefix(op), en)
		}
	}
	if !*follow {
		return nil
	}
	return s.FollowAll(ctx, ops, func(oe session.OpEntry) {
		if oe.Seq >= *from {
			printEntry(e, prefix(oe.Op), oe.Entry)
		}
	})
}

// printEntry prints `SEQ  TIME  SENDER✓: TEXT` for messages (✓: signature
// verified against the verified roster), roster changes as human lines,
// and each warning as `SEQ  ! warning`.
func printEntry(e *env, prefix string, en session.Entry) {
	ts := time.UnixMilli(en.TimeMS).Local().Format("2006-01-02 15:04:05")
	var body string
	switch en.Kind {
	case session.EntryMessage, session.EntryOwn:
		text := sanitize(en.Text)
		switch {
		case en.Type == session.TypeTask && len(en.TaskID) == session.TaskIDLen:
			due := ""
			if en.DueMS > 0 {
				due = " due " + time.UnixMilli(en.DueMS).Local().Format("2006-01-02 15:04")
			}
			text = fmt.Sprintf("[TASK %s %s%s] %s", session.TaskID(en.TaskID).Short(), en.Priority, due, text)
		case en.Type == session.TypeAck && len(en.TaskID) == session.TaskIDLen:
			text = fmt.Sprintf("[ACK %s %s] %s", session.TaskID(en.TaskID).Short(), en.State, text)
		case en.Type == session.TypeTask || en.Type == session.TypeAck:
			text = fmt.Sprintf("[%s, not tracked] %s", en.Type, text)
		case en.Type != session.TypeChat && en.Type != "":
			text = fmt.Sprintf("[%s message: not supported by this version]", sanitize(en.Type))
		}
		body = fmt.Sprintf("%s✓: %s", sanitize(en.SenderName), strings.TrimRight(text, " "))
	case session.EntryCommit:
		body = "* " + sanitize(en.Summary)
	case session.EntryBeforeJoin:
		body = "[sent before you joined]"
	case session.EntryNotMember:
		body = "[sent while you were not a member]"
	case session.EntryCompacted:
		body = "[" + sanitize(en.Summary) + "]"
	default:
		body = "[rejected]"
	}
	fmt.Fprintf(e.stdout, "%s%d  %s  %s\n", prefix, en.Seq, ts, body)
	for _, w := range en.Warnings {
		fmt.Fprintf(e.stdout, "%s%d  ! %s\n", prefix, en.Seq, sanitize(w))
	}
}

// sanitize escapes control characters so that text from the network cannot
// drive the terminal.
func sanitize(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
