package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"liaison/relay/wire"
)

// cmdSend implements `liaison send NAME TEXT...`.
func cmdSend(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("send")
	priority := fs.String("priority", "routine", "routine|immediate|flash")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the ack after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: send needs NAME and TEXT", errUsage)
	}
	op, text := pos[0], strings.Join(pos[1:], " ")
	if err := checkOp(op); err != nil {
		return err
	}
	class, err := parsePriority(*priority)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, done, err := e.openSession(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.Send(ctx, op, text, class)
	if err != nil {
		return err
	}
	dup := ""
	if res.Dup {
		dup = " (duplicate)"
	}
	fmt.Fprintf(e.stdout, "sent %s seq %d%s\n", op, res.Seq, dup)
	return nil
}

func parsePriority(s string) (wire.Class, error) {
	switch s {
	case "routine":
		return wire.ClassRoutine, nil
	case "immediate":
		return wire.ClassImmediate, nil
	case "flash":
		return wire.ClassFlash, nil
	}
	return 0, fmt.Errorf("%w: --priority must be routine, immediate or flash, not %q", errUsage, s)
}
