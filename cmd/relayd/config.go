package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"liaison/cluster"
	"liaison/crypto"
	"liaison/relay"
	"liaison/relay/wire"
)

// config is relayd's effective configuration. Every field with a toml tag
// can be set, in increasing order of precedence, by the TOML file given with
// --config (or $RELAYD_CONFIG), by the environment variable RELAYD_<KEY>
// (lists comma-separated), and by the flag --<key with dashes>.
type config struct {
	DataDir           string        `toml:"data_dir" help:"directory for the Raft log, snapshots and operation logs"`
	Listen            string        `toml:"listen" help:"client address (HTTP and WebSocket)"`
	RaftListen        string        `toml:"raft_listen" help:"Raft address this node listens on"`
	Advertise         string        `toml:"advertise" help:"Raft address other nodes reach this one at (default: raft_listen)"`
	RaftSource        string        `toml:"raft_source" help:"IP address connections to other nodes are made from (default: the OS's choice)"`
	NodeID            string        `toml:"node_id" help:"node id (default: the one stored in the data dir, or a new random one)"`
	Join              []string      `toml:"join" help:"client addresses (host:port) of running nodes; a new node joins their cluster instead of bootstrapping its own"`
	LogFormat         string        `toml:"log_format" help:"log format: text or json"`
	LogLevel          string        `toml:"log_level" help:"log level: debug, info, warn or error"`
	Origins           []string      `toml:"allowed_origins" help:"browser Origins allowed besides the node's own"`
	TLSCA             string        `toml:"tls_ca" help:"cluster CA certificate (liaison admin ca init); with tls_cert and tls_key, node-to-node traffic uses mutual TLS"`
	TLSCert           string        `toml:"tls_cert" help:"this node's certificate (liaison admin ca node)"`
	TLSKey            string        `toml:"tls_key" help:"this node's private key"`
	ClientTLS         bool          `toml:"client_tls" help:"serve clients over TLS (https, wss) with the node certificate; cluster changes then need an admin certificate"`
	RetentionMaxAge   string        `toml:"retention_max_age" help:"default retention: remove entries older than this (e.g. 720h; empty keeps them) from operations without a policy of their own; roster commits are always kept"`
	RetentionMaxCount uint64        `toml:"retention_max_count" help:"default retention: keep at most this many newest entries of each operation without a policy of its own (0: no limit)"`
	RetentionInterval string        `toml:"retention_interval" help:"how often the leader applies retention"`
	Admins            []string      `toml:"admins" help:"cluster admins a new cluster starts with: identity tokens, token files or public keys (64 hex digits); see also --admin"`
	OpenOps           bool          `toml:"open_ops" help:"let any authenticated client publish to and read operations that have no roster (tests and benchmarks only)"`
	FSMSync           bool          `toml:"fsm_sync" help:"fsync each operation-log write too (default: only the Raft log is fsynced, and a node rebuilds its operation logs from it after the system went down)"`
	CommitTimeout     time.Duration `toml:"commit_timeout" help:"how soon the leader tells followers of a commit when no new entry carries the news (at least 1ms; shorter delivers sooner on followers, longer sends fewer empty messages while idle)"`
	Pprof             bool          `toml:"pprof" help:"serve Go profiles (net/http/pprof) at /debug/pprof/ on the client listener, to loopback clients only (profiling)"`

	// Authentication and limits (docs/protocol.md, Authentication and
	// Limits). Zero takes the relay's default.
	ChallengeTTL        time.Duration `toml:"challenge_ttl" help:"how long after hello a client may answer the login challenge"`
	RequireBinding      bool          `toml:"require_channel_binding" help:"with client_tls, refuse logins not bound to the TLS channel (browsers cannot bind)"`
	MaxFrame            int           `toml:"max_frame_bytes" help:"largest frame a client may send; a larger one closes the connection with 1009"`
	MsgRate             float64       `toml:"msg_rate" help:"frames per second a connection may send (token bucket; negative: unlimited)"`
	MsgBurst            int           `toml:"msg_burst" help:"token bucket size for msg_rate (default twice the rate)"`
	MaxOps              int           `toml:"max_ops_per_conn" help:"distinct operations one connection may subscribe or publish to"`
	PingInterval        time.Duration `toml:"ping_interval" help:"how often the node pings each client"`
	IdleTimeout         time.Duration `toml:"idle_timeout" help:"close a connection that sent nothing, not even a pong, for this long (4003)"`
	WriteTimeout        time.Duration `toml:"write_timeout" help:"deadline of every write to a client"`
	QueueBytes          int           `toml:"queue_bytes" help:"bytes queued for one client before its subscriptions read from the log instead"`
	SlowConsumerTimeout time.Duration `toml:"slow_consumer_timeout" help:"disconnect a client whose queue stays at least half full this long (4002)"`
	MaxConnsPerAddr     int           `toml:"max_conns_per_addr" help:"open connections allowed from one source IP address (negative: unlimited)"`
	ReadHeaderTimeout   time.Duration `toml:"read_header_timeout" help:"time a client has to send its HTTP request headers"`

	// Restore is a one-off action, so a flag only.
	Restore string `toml:"-"`

	// Settings tests change; no flags.
	electionTimeout time.Duration
	relay           relay.Config

	// admins is Admins parsed (token files read) once, by validate.
	admins []crypto.Admin
}

// errPrinted means the configuration was printed (--print-config).
var errPrinted = errors.New("configuration printed")

// defaultReadHeaderTimeout bounds the HTTP request headers of a client.
const defaultReadHeaderTimeout = 10 * time.Second

func defaultConfig() config {
	r := relay.Config{}.WithDefaults()
	return config{DataDir: "liaison-data", Listen: "127.0.0.1:7400", RaftListen: "127.0.0.1:7401", LogFormat: "text", LogLevel: "info", RetentionInterval: "1m", CommitTimeout: time.Millisecond,
		ChallengeTTL: r.ChallengeTTL, MaxFrame: r.MaxFrame, MsgRate: r.MsgRate, MsgBurst: r.MsgBurst, MaxOps: r.MaxOps,
		PingInterval: r.PingInterval, IdleTimeout: r.IdleTimeout, WriteTimeout: r.WriteTimeout, QueueBytes: r.QueueBytes,
		SlowConsumerTimeout: r.SlowConsumerTimeout, MaxConnsPerAddr: r.MaxConnsPerAddr, ReadHeaderTimeout: defaultReadHeaderTimeout}
}

// relayConfig applies the settings to base (tests set base directly; a
// zero setting leaves base's value).
func (c *config) relayConfig(base relay.Config) relay.Config {
	base.OpenOps = c.OpenOps
	base.RequireChannelBinding = base.RequireChannelBinding || c.RequireBinding
	base.AllowedOrigins = c.Origins
	setIf(&base.ChallengeTTL, c.ChallengeTTL)
	setIf(&base.MaxFrame, c.MaxFrame)
	setIf(&base.MsgRate, c.MsgRate)
	setIf(&base.MsgBurst, c.MsgBurst)
	setIf(&base.MaxOps, c.MaxOps)
	setIf(&base.PingInterval, c.PingInterval)
	setIf(&base.IdleTimeout, c.IdleTimeout)
	setIf(&base.WriteTimeout, c.WriteTimeout)
	setIf(&base.QueueBytes, c.QueueBytes)
	setIf(&base.SlowConsumerTimeout, c.SlowConsumerTimeout)
	setIf(&base.MaxConnsPerAddr, c.MaxConnsPerAddr)
	return base
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// settable lists the config fields by TOML key.
func settable(c *config) map[string]reflect.Value {
	out := make(map[string]reflect.Value)
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if key := f.Tag.Get("toml"); key != "" && key != "-" {
			out[key] = v.Field(i)
		}
	}
	return out
}

// set assigns a string value to a field: lists are comma-separated, bools
// as strconv.ParseBool reads them.
func set(field reflect.Value, value string) error {
	switch field.Kind() {
	case reflect.String:
		field.SetString(value)
	case reflect.Uint64:
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", value)
		}
		field.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%q is not true or false", value)
		}
		field.SetBool(b)
	case reflect.Slice:
		field.Set(reflect.ValueOf(splitList(value)))
	case reflect.Int64:
		if field.Type() != reflect.TypeOf(time.Duration(0)) {
			return fmt.Errorf("unsupported field type %s", field.Type())
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 30s or 2m)", value)
		}
		field.SetInt(int64(d))
	case reflect.Int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%q is not an integer", value)
		}
		field.SetInt(int64(n))
	case reflect.Float64:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", value)
		}
		field.SetFloat(f)
	default:
		return fmt.Errorf("unsupported field kind %s", field.Kind())
	}
	return nil
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return "RELAYD_" + strings.ToUpper(key) }

// parseFlags builds the effective configuration from defaults, the file,
// the environment (getenv) and the flags, and validates it.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	return loadConfig(args, os.Getenv, stderr, os.Stdout)
}

func loadConfig(args []string, getenv func(string) string, stderr, stdout io.Writer) (config, error) {
	c := defaultConfig()
	fields := settable(&c)
	fs := flag.NewFlagSet("relayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: relayd [flags]\n\nRuns one Liaison relay node. With no flags: a one-node cluster with data in ./liaison-data,\nclients on 127.0.0.1:7400 (/ web client, /ws, /healthz, /readyz, /metrics, /cluster/) and Raft on 127.0.0.1:7401.\n\nEvery setting comes from, in increasing precedence: the TOML file (--config or $RELAYD_CONFIG,\nkeys as below with underscores), the environment (RELAYD_<KEY>, lists comma-separated), the flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	configFile := fs.String("config", "", "TOML configuration file (default $RELAYD_CONFIG)")
	printConfig := fs.Bool("print-config", false, "print the effective configuration as TOML and exit")
	fs.StringVar(&c.Restore, "restore", "", "start a new one-node cluster in an empty data dir from this backup file (liaison admin snapshot)")
	var adminFlags multiFlag
	fs.Var(&adminFlags, "admin", "a cluster admin of a new cluster: identity token, token file or public key (64 hex digits); repeatable (config key admins)")
	flagValues := make(map[string]*string)
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		key := f.Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		def := fmt.Sprint(v.Field(i).Interface())
		if v.Field(i).Kind() == reflect.Slice {
			def = ""
		}
		if v.Field(i).Kind() == reflect.Bool {
			s := new(string)
			flagValues[key] = s
			fs.Var(boolString{b: new(bool), s: s}, flagName(key), f.Tag.Get("help"))
			continue
		}
		flagValues[key] = fs.String(flagName(key), def, f.Tag.Get("help"))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	// 1. The file.
	path := *configFile
	if path == "" {
		path = getenv("RELAYD_CONFIG")
	}
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		if un := md.Undecoded(); len(un) > 0 {
			return c, fmt.Errorf("config %s: unknown key %q", path, un[0].String())
		}
	}
	// 2. The environment.
	for key, field := range fields {
		if val, ok := lookupEnv(getenv, envName(key)); ok {
			if err := set(field, val); err != nil {
				return c, fmt.Errorf("%s: %w", envName(key), err)
			}
		}
	}
	// 3. The flags given on the command line.
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		key := strings.ReplaceAll(f.Name, "-", "_")
		if field, ok := fields[key]; ok && ferr == nil {
			if err := set(field, *flagValues[key]); err != nil {
				ferr = fmt.Errorf("--%s: %w", f.Name, err)
			}
		}
	})
	if ferr != nil {
		return c, ferr
	}
	if len(adminFlags) > 0 {
		c.Admins = append(c.Admins[:0:0], adminFlags...)
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	if *printConfig {
		fmt.Fprintf(stdout, "# relayd effective configuration (file %q, then RELAYD_* environment, then flags)\n", path)
		if err := toml.NewEncoder(stdout).Encode(c); err != nil {
			return c, err
		}
		return c, errPrinted
	}
	return c, nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// boolString is a bool flag that also records its value as a string, so
// flags of every kind are applied the same way.
type boolString struct {
	b *bool
	s *string
}

func (b boolString) String() string {
	if b.b == nil {
		return "false"
	}
	return strconv.FormatBool(*b.b)
}

func (b boolString) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b.b, *b.s = x, strconv.FormatBool(x)
	return nil
}

func (b boolString) IsBoolFlag() bool { return true }

// validate checks every field, naming the field in the error, and keeps
// the parsed admins.
func (c *config) validate() error {
	for key, addr := range map[string]string{"listen": c.Listen, "raft_listen": c.RaftListen, "advertise": c.Advertise} {
		if addr == "" && key == "advertise" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%s: %q is not host:port", key, addr)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join: %q is not host:port", j)
		}
	}
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log_format: %q is not text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if n := countSet(c.TLSCA, c.TLSCert, c.TLSKey); n != 0 && n != 3 {
		return errors.New("tls_ca, tls_cert and tls_key go together")
	}
	if c.ClientTLS && c.TLSCert == "" {
		return errors.New("client_tls needs tls_ca, tls_cert and tls_key")
	}
	admins, err := parseAdmins(c.Admins)
	if err != nil {
		return err
	}
	c.admins = admins
	for key, d := range map[string]time.Duration{"challenge_ttl": c.ChallengeTTL, "ping_interval": c.PingInterval, "idle_timeout": c.IdleTimeout,
		"write_timeout": c.WriteTimeout, "slow_consumer_timeout": c.SlowConsumerTimeout, "read_header_timeout": c.ReadHeaderTimeout} {
		if d < 0 {
			return fmt.Errorf("%s: %s is negative", key, d)
		}
	}
	if c.MaxFrame != 0 && (c.MaxFrame < 1024 || c.MaxFrame > wire.MaxClientFrame) {
		return fmt.Errorf("max_frame_bytes: %d is not between 1024 and %d", c.MaxFrame, wire.MaxClientFrame)
	}
	for key, n := range map[string]int{"msg_burst": c.MsgBurst, "max_ops_per_conn": c.MaxOps, "queue_bytes": c.QueueBytes} {
		if n < 0 {
			return fmt.Errorf("%s: %d is negative", key, n)
		}
	}
	if c.PingInterval != 0 && c.IdleTimeout != 0 && c.IdleTimeout <= c.PingInterval {
		return fmt.Errorf("idle_timeout: %s must be longer than ping_interval %s", c.IdleTimeout, c.PingInterval)
	}
	if _, err := c.retention(); err != nil {
		return err
	}
	if c.CommitTimeout < time.Millisecond {
		return fmt.Errorf("commit_timeout: %v is below raft's minimum of 1ms", c.CommitTimeout)
	}
	if d, err := time.ParseDuration(c.RetentionInterval); err != nil || d < time.Second {
		return fmt.Errorf("retention_interval: %q is not a duration of at least 1s", c.RetentionInterval)
	}
	if c.Restore != "" && len(c.Join) > 0 {
		return errors.New("--restore starts a new cluster; it cannot be combined with join")
	}
	return nil
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
		return l, fmt.Errorf("log_level: %q is not debug, info, warn or error", s)
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

// resolveNodeID returns the node id: the configured one if set (it must
// match a stored one), else the stored one, else a new random id that is
// stored.
func resolveNodeID(dataDir, flagID string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	stored, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(stored))
		if flagID != "" && flagID != id {
			return "", fmt.Errorf("node_id %q, but %s belongs to node %q", flagID, dataDir, id)
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

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// retention returns the default retention policy.
func (c *config) retention() (cluster.Retention, error) {
	p := cluster.Retention{MaxCount: c.RetentionMaxCount}
	if c.RetentionMaxAge != "" {
		d, err := time.ParseDuration(c.RetentionMaxAge)
		if err != nil || d < time.Second {
			return p, fmt.Errorf("retention_max_age: %q is not a duration of at least 1s (e.g. 720h)", c.RetentionMaxAge)
		}
		p.MaxAge = d
	}
	return p, nil
}
