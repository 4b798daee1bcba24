package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"liaison/clients"
)

// cmdRead implements `liaison read OP [--from N] [--follow]`.
func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("read")
	from := fs.Uint64("from", 1, "first sequence to print")
	follow := fs.Bool("follow", false, "keep printing new messages until interrupted")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: read needs exactly one OP", errUsage)
	}
	op := pos[0]
	if err := checkOp(op); err != nil {
		return err
	}
	if *from == 0 {
		return fmt.Errorf("%w: --from must be at least 1", errUsage)
	}

	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, op, *from)
	if err != nil {
		return err
	}
	defer sub.Close()
	head := sub.Head()
	if !*follow && head < *from {
		return nil
	}
	for {
		select {
		case m, ok := <-sub.Messages():
			if !ok {
				if err := sub.Err(); err != nil {
					return err
				}
				return errors.New("subscription ended")
			}
			fmt.Fprintln(e.stdout, formatMessage(m))
			if !*follow && m.Seq >= head {
				return nil
			}
		case <-ctx.Done():
			if *follow {
				return nil
			}
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
}

// formatMessage renders one entry as `SEQ  TIME  SENDER: TEXT` for
// placeholder envelopes and `SEQ  <N-byte envelope>` otherwise.
func formatMessage(m clients.Message) string {
	pm, err := clients.ParsePlaintextEnvelope(m.Envelope)
	if err != nil {
		return fmt.Sprintf("%d  <%d-byte envelope>", m.Seq, len(m.Envelope))
	}
	return fmt.Sprintf("%d  %s  %s: %s", m.Seq, pm.Time.Local().Format("2006-01-02 15:04:05"), sanitize(pm.Sender), sanitize(pm.Text))
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
