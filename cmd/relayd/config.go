package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"liaison/relay"
)

// config is relayd's effective configuration.
type config struct {
	DataDir    string
	Listen     string
	RaftListen string
	Advertise  string
	NodeID     string
	LogFormat  string
	LogLevel   string
	Origins    []string
	Join       []string
	Restore    string
	TLSCA      string
	TLSCert    string
	TLSKey     string
	ClientTLS  bool

	// Settings tests change; no flags.
	electionTimeout time.Duration
	relay           relay.Config
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var origins string
	fs := flag.NewFlagSet("relayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: relayd [flags]\n\nRuns one Liaison relay node. With no flags: a one-node cluster with data in ./liaison-data,\nclients on 127.0.0.1:7400 (/ws, /healthz, /readyz) and Raft on 127.0.0.1:7401.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DataDir, "data-dir", "liaison-data", "directory for the Raft log, snapshots and operation logs")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:7400", "client address (HTTP and WebSocket)")
	fs.StringVar(&c.RaftListen, "raft-listen", "127.0.0.1:7401", "Raft address this node listens on")
	fs.StringVar(&c.Advertise, "advertise", "", "Raft address other nodes reach this one at (default: --raft-listen)")
	fs.StringVar(&c.NodeID, "node-id", "", "node id (default: the one stored in the data dir, or a new random one)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser Origins allowed besides the node's own")
	fs.StringVar(&c.Restore, "restore", "", "start a new one-node cluster in an empty --data-dir from this backup file (made by `liaison admin snapshot`)")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "cluster CA certificate (from `liaison admin ca init`); with --tls-cert and --tls-key, node-to-node traffic uses mutual TLS")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "this node's certificate (from `liaison admin ca node`)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "this node's private key")
	fs.BoolVar(&c.ClientTLS, "client-tls", false, "serve clients over TLS (https, wss) with the node certificate; cluster changes then need an admin certificate")
	var join string
	fs.StringVar(&join, "join", "", "comma-separated client addresses (host:port) of running nodes; a new node joins their cluster instead of bootstrapping its own")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Origins = splitList(origins)
	c.Join = splitList(join)
	if n := countSet(c.TLSCA, c.TLSCert, c.TLSKey); n != 0 && n != 3 {
		return c, errors.New("--tls-ca, --tls-cert and --tls-key go together")
	}
	if c.ClientTLS && c.TLSCert == "" {
		return c, errors.New("--client-tls needs --tls-ca, --tls-cert and --tls-key")
	}
	if c.Restore != "" && len(c.Join) > 0 {
		return c, errors.New("--restore starts a new cluster; it cannot be combined with --join")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format: %q is not text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return c, err
	}
	return c, nil
}

func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c config, w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// resolveNodeID returns the node id: the flag's if set (it must match a
// stored one), else the stored one, else a new random id that is stored.
func resolveNodeID(dataDir, flagID string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	stored, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(stored))
		if flagID != "" && flagID != id {
			return "", fmt.Errorf("--node-id %q, but %s belongs to node %q", flagID, dataDir, id)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := flagID
	if id == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = "node-" + hex.EncodeToString(b[:])
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("store node id: %w", err)
	}
	return id, nil
}
