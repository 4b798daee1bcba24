// Command officers plays many officers of one operation for the tasking
// process test (cmd/relayd/tasking_process_test.go). It is built without the
// race detector, so the officers' cryptography runs at normal speed while
// the relayd processes and the centre run under it.
//
// It talks to the test over stdin and stdout, one line each way:
//
//	out: "token NAME TOKEN" per officer, then "tokens"
//	in:  "join"          out: "joined" once every officer processed the genesis
//	in:  "ack TASK"      out: "acked" once every officer acknowledged TASK
//	                     (states received, understood, done, unable in turn,
//	                     note "note I"), after "cpu SECONDS" (its CPU time)
//	in:  "quit" or EOF   closes every connection and exits
//
// Errors go to stderr, with exit status 1.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/crypto"
)

type officer struct {
	id *crypto.Identity
	c  *clients.Client
	s  *session.Session
}

func main() {
	relays := flag.String("relays", "", "comma-separated relay addresses; officer i connects to address i mod count first")
	op := flag.String("op", "", "operation")
	n := flag.Int("n", 200, "officers")
	home := flag.String("home", "", "directory for the officers' local state")
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() {
				pprof.StopCPUProfile()
				f.Close()
			}()
		}
	}
	if err := run(*relays, *op, *n, *home); err != nil {
		fmt.Fprintln(os.Stderr, "officers:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(relays, op string, n int, home string) error {
	addrs := strings.Split(relays, ",")
	if relays == "" || op == "" || home == "" || n < 1 {
		return fmt.Errorf("need --relays, --op, --home and --n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	offs := make([]*officer, n)
	for i := range offs {
		id, err := crypto.NewIdentity(rand.Reader, fmt.Sprintf("officer-%03d", i))
		if err != nil {
			return err
		}
		offs[i] = &officer{id: id}
		fmt.Printf("token %s %s\n", id.Name(), id.Token().String())
	}
	fmt.Println("tokens")
	defer func() {
		for _, o := range offs {
			if o.c != nil {
				o.c.Close()
			}
		}
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	states := []session.AckState{session.AckReceived, session.AckUnderstood, session.AckDone, session.AckUnable}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "join":
			err := each(offs, func(i int, o *officer) error {
				order := append([]string{addrs[i%len(addrs)]}, addrs...)
				c, err := clients.Dial(ctx, order, clients.Options{Logger: quiet, Identity: o.id, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 500 * time.Millisecond})
				if err != nil {
					return err
				}
				o.c = c
				o.s = session.New(filepath.Join(home, o.id.Name()), o.id, c, session.Options{KeyUpdateAfter: -1})
				_, err = o.s.Sync(ctx, op)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Println("joined")
		case "ack":
			err := each(offs, func(i int, o *officer) error {
				for {
					_, err := o.s.AckTask(ctx, op, arg, states[i%len(states)], fmt.Sprintf("note %d", i))
					if !errors.Is(err, session.ErrNoTask) {
						return err
					}
					// The node this officer reads from has not applied
					// the task yet (a follower learns of a commit with
					// the leader's next message): look again shortly.
					select {
					case <-time.After(50 * time.Millisecond):
					case <-ctx.Done():
						return err
					}
				}
			})
			if err != nil {
				return err
			}
			var ru syscall.Rusage
			if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
				fmt.Printf("cpu %.1fs\n", time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
			}
			fmt.Println("acked")
		case "quit":
			return nil
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
	return in.Err()
}

// each runs f for every officer, a few at a time, and returns the first
// error.
func each(offs []*officer, f func(i int, o *officer) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var first error
	for i, o := range offs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i, o); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", o.id.Name(), err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
