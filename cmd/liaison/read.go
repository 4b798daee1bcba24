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

// cmdRead implements `liaison read NAME [--from N] [--follow]`: it syncs the
// local history with the relay, prints it from N, and with --follow keeps
// printing new entries.
func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("read")
	from := fs.Uint64("from", 1, "first sequence to print")
	follow := fs.Bool("follow", false, "keep printing new entries until interrupted")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: read needs exactly one NAME", errUsage)
	}
	op := pos[0]
	if err := checkOp(op); err != nil {
		return err
	}
	if *from == 0 {
		return fmt.Errorf("%w: --from must be at least 1", errUsage)
	}
	s, done, err := e.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	if _, err := s.Sync(ctx, op); err != nil {
		return err
	}
	hist, err := s.History(op, *from)
	if err != nil {
		return err
	}
	for _, en := range hist {
		printEntry(e, en)
	}
	if !*follow {
		return nil
	}
	return s.Follow(ctx, op, func(en session.Entry) {
		if en.Seq >= *from {
			printEntry(e, en)
		}
	})
}

// printEntry prints `SEQ  TIME  SENDER✓: TEXT` for messages (✓: signature
// verified against the verified roster), roster changes as human lines,
// and each warning as `SEQ  ! warning`.
func printEntry(e *env, en session.Entry) {
	ts := time.UnixMilli(en.TimeMS).Local().Format("2006-01-02 15:04:05")
	var body string
	switch en.Kind {
	case session.EntryMessage, session.EntryOwn:
		text := en.Text
		if en.Type != session.TypeChat && en.Type != "" {
			text = fmt.Sprintf("[%s message: not supported by this version]", en.Type)
		}
		body = fmt.Sprintf("%s✓: %s", sanitize(en.SenderName), sanitize(text))
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
	fmt.Fprintf(e.stdout, "%d  %s  %s\n", en.Seq, ts, body)
	for _, w := range en.Warnings {
		fmt.Fprintf(e.stdout, "%d  ! %s\n", en.Seq, sanitize(w))
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
