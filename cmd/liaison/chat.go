package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	tea "charm.land/bubbletea/v2"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/clients/tui"
	"liaison/crypto"
)

// quitGrace bounds how long `liaison chat` may take to stop once asked.
const quitGrace = 20 * time.Second

// cmdChat implements `liaison chat [NAME]`: the terminal user interface
// over every local operation (and NAME, joined on the way if new).
func cmdChat(ctx context.Context, e *env, args []string) error {
	fs := e.newFlagSet("chat")
	logFile := fs.String("log", "", "write the client's log to this file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: chat takes at most one NAME", errUsage)
	}
	var op string
	if len(pos) == 1 {
		op = pos[0]
		if err := checkOp(op); err != nil {
			return err
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var dump io.Writer = e.stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		logger, dump = slog.New(slog.NewTextHandler(f, nil)), f
	}
	id, err := e.loadIdentity()
	if err != nil {
		return err
	}
	defer id.Destroy()
	home, err := e.homeDir()
	if err != nil {
		return err
	}
	c, err := e.dialLogged(ctx, id, logger)
	if err != nil {
		return err
	}
	defer c.Close()

	var eng *tui.Engine
	s := session.New(home, id, c, e.sessionOptions(func(op, msg string) {
		if eng != nil {
			eng.Warn(op, msg)
		}
	}))
	infos, err := s.Ops()
	if err != nil {
		return err
	}
	var ops []string
	for _, in := range infos {
		ops = append(ops, in.Op)
	}
	if op == "" && len(ops) == 0 {
		return fmt.Errorf("%w: no local operation yet: `liaison chat NAME` opens one you were added to", errUsage)
	}
	if op == "" {
		op = ops[0]
	}
	eng = tui.NewEngine(s, c, tui.EngineOptions{Logger: logger})
	// Quitting must not hang on a relay: everything is saved before it is
	// sent, so after quitGrace the process exits whatever is running
	// (with the goroutines in the log, to find out what was).
	onQuit := func() {
		time.AfterFunc(quitGrace, func() {
			logger.Error("chat did not stop in time; exiting", "grace", quitGrace)
			pprof.Lookup("goroutine").WriteTo(dump, 2)
			fmt.Fprintf(e.stderr, "liaison: the chat did not stop within %v; exiting (your messages are saved)\n", quitGrace)
			os.Exit(3)
		})
	}
	m := tui.New(eng, tui.Options{Ops: ops, Current: op, Events: eng.Events(), OnQuit: onQuit})
	eng.Start(append(ops, op)...)
	_, runErr := tea.NewProgram(m, tea.WithContext(ctx)).Run()
	logger.Info("chat ended; stopping", "err", runErr)
	eng.Close()
	logger.Info("engine stopped")
	seen := make(map[string]bool)
	for _, o := range append(ops, op) {
		if seen[o] {
			continue
		}
		seen[o] = true
		if ob, err := s.Outbox(o); err == nil && len(ob) > 0 {
			fmt.Fprintf(e.stderr, "liaison: %d message(s) to %s not yet confirmed by the relay; they are kept and sent by the next `liaison chat`, `send` or `read`\n", len(ob), o)
		}
	}
	if runErr != nil && !errors.Is(runErr, tea.ErrProgramKilled) {
		return runErr
	}
	return nil
}

// dialLogged connects to the relays named by --relay as id, logging to
// logger.
func (e *env) dialLogged(ctx context.Context, id *crypto.Identity, logger *slog.Logger) (*clients.Client, error) {
	tc, err := e.tlsConfig()
	if err != nil {
		return nil, err
	}
	return clients.Dial(ctx, e.relayURLs(), clients.Options{DialTimeout: 10 * time.Second, TLSConfig: tc, Identity: id, Logger: logger, ClientName: "liaison-chat"})
}
