package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"liaison/clients"
	"liaison/relay/wire"
)

// cmdSend implements `liaison send OP TEXT...`.
func cmdSend(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("send")
	as := fs.String("as", defaultSender(), "sender name")
	priority := fs.String("priority", "routine", "routine|immediate|flash")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the ack after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: send needs OP and TEXT", errUsage)
	}
	op, text := pos[0], strings.Join(pos[1:], " ")
	if err := checkOp(op); err != nil {
		return err
	}
	class, err := parsePriority(*priority)
	if err != nil {
		return err
	}
	sender := *as
	if sender == "" {
		sender = "unknown"
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Publish(ctx, op, clients.PlaintextEnvelope(sender, text, time.Now()), clients.WithClass(class))
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

// defaultSender names the sender of placeholder envelopes: $USER, else the
// account name, else the host name.
func defaultSender() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "unknown"
}
