package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"liaison/clients"
	"liaison/relay/wire"
)

const defaultRelay = "127.0.0.1:7400"

const usage = `usage: liaison [--relay ADDRS] COMMAND [ARGS]

Commands:
  send OP TEXT...            publish a message to operation OP
                             flags: --as NAME, --priority routine|immediate|flash
  read OP [--from N] [--follow]
                             print OP's messages from sequence N (default 1);
                             without --follow stop at the relay's current head
  help                       show this text

Common flags (before or after the command):
  --relay ADDRS   comma-separated relay addresses (host:port, ws://..., wss://...);
                  default $LIAISON_RELAY or ` + defaultRelay + `

NOTE: messages are sent as a PLAINTEXT PLACEHOLDER until end-to-end
encryption lands. Do not send anything sensitive.
`

// errUsage marks errors that should print the usage text and exit 2.
var errUsage = errors.New("usage")

// env carries what every command needs.
type env struct {
	stdout, stderr io.Writer
	relay          string
}

// run is the CLI without the process: args exclude the program name. It
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, relay: os.Getenv("LIAISON_RELAY")}
	if e.relay == "" {
		e.relay = defaultRelay
	}
	global := flag.NewFlagSet("liaison", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&e.relay, "relay", e.relay, "")
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
	case "send":
		err = cmdSend(ctx, e, rest)
	case "read":
		err = cmdRead(ctx, e, rest)
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

// newFlagSet returns a subcommand's flag set with the common flags.
func (e *env) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("liaison "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.relay, "relay", e.relay, "comma-separated relay addresses")
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

// checkOp validates an operation name given on the command line. For now an
// operation's wire name is its name.
func checkOp(op string) error {
	if !wire.ValidOp(op) {
		return fmt.Errorf("%w: invalid operation name %q (1-64 of A-Z a-z 0-9 . _ -, not starting with .)", errUsage, op)
	}
	return nil
}

// dial connects to the relays named by --relay.
func (e *env) dial(ctx context.Context) (*clients.Client, error) {
	var urls []string
	for _, u := range strings.Split(e.relay, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return clients.Dial(ctx, urls, clients.Options{DialTimeout: 10 * time.Second})
}
