package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Names of the measured systems, as they appear in results.json.
const (
	sysLiaison   = "liaison"
	sysJSAlways  = "jetstream-always"
	sysJSDefault = "jetstream-default"
)

// system is a running three-node cluster of one kind, seen through what the
// figures need. Streams (Liaison: operations) are named by the figure; a
// system creates what it must on first use.
type system interface {
	name() string
	// createStream prepares an empty stream (JetStream: three replicas,
	// file storage). Liaison operations need no creation.
	createStream(ctx context.Context, stream string) error
	// dropStream removes a stream a figure is done with, and its
	// consumers (JetStream limits how many an account holds). Liaison
	// keeps the operation: it costs nothing while unused.
	dropStream(ctx context.Context, stream string) error
	// publisher connects one publisher (its own connection) to node.
	publisher(ctx context.Context, node int, stream string) (publisher, error)
	// subscribe connects one subscriber (its own connection) to node and
	// calls fn, from one goroutine, with each payload of stream from the
	// first message on.
	subscribe(ctx context.Context, node int, stream string, fn func(payload []byte)) (closer, error)
	// idleConns opens n authenticated WebSocket connections to node that
	// then stay idle; close releases them.
	idleConns(ctx context.Context, node, n int) (closer, error)
	// pid is the process id of node.
	pid(node int) int
	close() error
}

type closer interface{ Close() error }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// publisher publishes to one stream over one connection.
type publisher interface {
	// publish returns once the message is durably acknowledged.
	publish(ctx context.Context, payload []byte) error
	// publishAsync sends payload and calls done with the outcome of its
	// acknowledgement. It may block when too many are outstanding.
	publishAsync(ctx context.Context, payload []byte, done func(error))
	Close() error
}

// rssBytes reads the resident set size of process pid from /proc.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// raiseFileLimit raises RLIMIT_NOFILE as far as it goes (root may raise the
// hard limit too); child processes inherit it.
func raiseFileLimit(want uint64) (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur >= want {
		return r.Cur, nil
	}
	if r.Max < want {
		try := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			return want, nil
		}
	}
	r.Cur = min(want, r.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}

// sourceDialer returns a dial function that spreads connections over the
// source addresses 127.0.0.2 up to 127.0.0.(1+spread), so that tens of
// thousands of connections to one port do not run out of ephemeral ports.
func sourceDialer(i, spread int) *net.Dialer {
	ip := net.IPv4(127, 0, 0, byte(2+i%spread))
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(ip string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
