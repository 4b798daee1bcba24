package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/cluster/pki"
	"liaison/crypto"
	"liaison/relay/wire"
)

const defaultRelay = "127.0.0.1:7400"

const usage = `usage: liaison [--relay ADDRS] [--home DIR] [--identity FILE] COMMAND [ARGS]

Identity:
  id new [--name NAME]       create your identity (asks for a passphrase twice);
                             prints your fingerprint and your token
  id show [--peer TOKEN]     your name and fingerprint; with --peer, the safety
                             number to compare with that person out of band
  id export                  print your public token (hand it to the centre)

Operations (NAME is the operation's name on the relay):
  op create NAME [--member TOKEN[:admin|centre|officer]]...
                             create an operation with you as admin
  op add NAME TOKEN [--role admin|centre|officer]   add a member (default officer)
  op remove NAME MEMBER      remove a member (fingerprint prefix, key hex or name)
  op members NAME            list the verified members
  op list                    list your local operations
  op verify NAME             epoch and code to compare with other members
  op update NAME             replace your key now (new epoch)

Messages (end-to-end encrypted):
  send NAME TEXT...          flags: --priority routine|immediate|flash
  read NAME... | --all [--from N] [--follow]
                             print the history of one or more operations from
                             sequence N (default 1); with --follow keep
                             printing new entries (one connection for all)

Tasking (end-to-end encrypted; centre and admin members send tasks):
  task send NAME --priority flash|immediate|routine [--due TIME] TEXT...
                             TIME: RFC 3339, "2006-01-02 15:04", "15:04" or a
                             duration from now ("45m")
  task ack NAME TASK --state received|understood|done|unable [--note TEXT]
                             TASK: the id (or 4+ leading hex digits) or seq
  task status NAME... | --all [--summary]
                             per task: who has it (relay delivery), who
                             acknowledged with which state, who is overdue

Terminal chat:
  chat [NAME]                your operations, unread counts, tasks (one key to
                             acknowledge), outbox, safety numbers (docs/clients.md)
Cluster administration:
  admin status|join|remove|snapshot|admins|audit|ca   see "liaison admin" for details
  help                       show this text

Common flags (before or after the command):
  --relay ADDRS     comma-separated relay addresses (host:port, ws://..., wss://...);
                    default $LIAISON_RELAY or ` + defaultRelay + `
  --home DIR        local state; default $LIAISON_HOME or ~/.liaison
  --identity FILE   identity file; default $LIAISON_IDENTITY or HOME/identity
  --tls-ca FILE     cluster CA: reach relays over TLS ($LIAISON_TLS_CA)
  --tls-cert FILE, --tls-key FILE
                    admin certificate for cluster changes over TLS
The passphrase is prompted on the terminal, or read from $LIAISON_PASSPHRASE.
`

// errUsage marks errors that should print the usage text and exit 2.
var errUsage = errors.New("usage")

// kdfParams are the argon2id parameters of new identity files (lowered by
// tests).
var kdfParams = crypto.DefaultKDFParams

// env carries what every command needs.
type env struct {
	stdout, stderr io.Writer
	relay          string
	home           string
	identity       string
	getenv         func(string) string
	// readPassword prompts for a passphrase; nil uses the terminal.
	readPassword func(prompt string) ([]byte, error)
	// TLS: the cluster CA to verify relays with, and an optional client
	// (admin) certificate.
	tlsCA, tlsCert, tlsKey string
}

// run is the CLI without the process: args exclude the program name. It
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	e.relay = e.getenv("LIAISON_RELAY")
	if e.relay == "" {
		e.relay = defaultRelay
	}
	e.home = e.getenv("LIAISON_HOME")
	e.identity = e.getenv("LIAISON_IDENTITY")
	e.tlsCA, e.tlsCert, e.tlsKey = e.getenv("LIAISON_TLS_CA"), e.getenv("LIAISON_TLS_CERT"), e.getenv("LIAISON_TLS_KEY")
	global := flag.NewFlagSet("liaison", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	e.commonFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "liaison: %v\n\n%s", err, usage)
		return 2
	}
	args = global.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "id":
		err = cmdID(ctx, e, rest)
	case "op":
		err = cmdOp(ctx, e, rest)
	case "send":
		err = cmdSend(ctx, e, rest)
	case "read":
		err = cmdRead(ctx, e, rest)
	case "chat":
		err = cmdChat(ctx, e, rest)
	case "task":
		err = cmdTask(ctx, e, rest)
	case "admin":
		err = cmdAdmin(ctx, e, rest)
	default:
		fmt.Fprintf(stderr, "liaison: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "liaison: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "liaison: %v\n", err)
		return 1
	}
}

func (e *env) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.relay, "relay", e.relay, "comma-separated relay addresses")
	fs.StringVar(&e.home, "home", e.home, "local state directory")
	fs.StringVar(&e.identity, "identity", e.identity, "identity file")
	fs.StringVar(&e.tlsCA, "tls-ca", e.tlsCA, "cluster CA certificate: connect to relays over TLS")
	fs.StringVar(&e.tlsCert, "tls-cert", e.tlsCert, "client (admin) certificate for TLS")
	fs.StringVar(&e.tlsKey, "tls-key", e.tlsKey, "client (admin) key for TLS")
}

// tlsConfig returns the TLS client config for relays, nil without --tls-ca.
func (e *env) tlsConfig() (*tls.Config, error) {
	if e.tlsCA == "" {
		if e.tlsCert != "" || e.tlsKey != "" {
			return nil, fmt.Errorf("%w: --tls-cert and --tls-key need --tls-ca", errUsage)
		}
		return nil, nil
	}
	return pki.LoadClientTLS(e.tlsCA, e.tlsCert, e.tlsKey)
}

// relayURLs returns the relay addresses as WebSocket URLs (wss:// when TLS
// is configured and an address has no scheme).
func (e *env) relayURLs() []string {
	var urls []string
	for _, u := range strings.Split(e.relay, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if e.tlsCA != "" && !strings.Contains(u, "://") {
			u = "wss://" + u + "/ws"
		}
		urls = append(urls, u)
	}
	return urls
}

// newFlagSet returns a subcommand's flag set with the common flags.
func (e *env) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("liaison "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.commonFlags(fs)
	return fs
}

// parseArgs parses flags that may appear before, between or after
// positional arguments ("--" ends flags) and returns the positionals.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkOp validates an operation name given on the command line. An
// operation's wire name is its name.
func checkOp(op string) error {
	if !wire.ValidOp(op) {
		return fmt.Errorf("%w: invalid operation name %q (1-64 of A-Z a-z 0-9 . _ -, not starting with .)", errUsage, op)
	}
	return nil
}

// homeDir returns --home, $LIAISON_HOME or ~/.liaison.
func (e *env) homeDir() (string, error) {
	if e.home != "" {
		return e.home, nil
	}
	return session.DefaultHome()
}

// identityPath returns --identity, $LIAISON_IDENTITY or HOME/identity.
func (e *env) identityPath() (string, error) {
	if e.identity != "" {
		return e.identity, nil
	}
	h, err := e.homeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, "identity"), nil
}

// dial connects to the relays named by --relay, proving the person's
// identity to each.
func (e *env) dial(ctx context.Context, id *crypto.Identity) (*clients.Client, error) {
	tc, err := e.tlsConfig()
	if err != nil {
		return nil, err
	}
	return clients.Dial(ctx, e.relayURLs(), clients.Options{DialTimeout: 10 * time.Second, TLSConfig: tc, Identity: id})
}

// loadIdentity decrypts the identity file.
func (e *env) loadIdentity() (*crypto.Identity, error) {
	path, err := e.identityPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no identity at %s (create one with `liaison id new`): %w", path, err)
	}
	pass, err := e.passphrase("Passphrase for "+path+": ", false)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	return session.LoadIdentityFile(path, pass)
}

// sessionOptions returns the session options with warn and, from
// $LIAISON_KEY_UPDATE_AFTER (a duration; tests), the key update interval.
func (e *env) sessionOptions(warn func(op, msg string)) session.Options {
	opts := session.Options{Warn: warn}
	if v := e.getenv("LIAISON_KEY_UPDATE_AFTER"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			opts.KeyUpdateAfter = d
		}
	}
	return opts
}

// openSession loads the identity and, if withRelay, connects to the relay.
// close releases both.
func (e *env) openSession(ctx context.Context, withRelay bool) (s *session.Session, close func(), err error) {
	id, err := e.loadIdentity()
	if err != nil {
		return nil, nil, err
	}
	home, err := e.homeDir()
	if err != nil {
		id.Destroy()
		return nil, nil, err
	}
	var c *clients.Client
	var relay session.Relay
	if withRelay {
		if c, err = e.dial(ctx, id); err != nil {
			id.Destroy()
			return nil, nil, err
		}
		relay = c
	}
	s = session.New(home, id, relay, e.sessionOptions(func(op, msg string) {
		fmt.Fprintf(e.stderr, "liaison: warning: %s: %s\n", op, sanitize(msg))
	}))
	return s, func() {
		if c != nil {
			c.Close()
		}
		id.Destroy()
	}, nil
}
