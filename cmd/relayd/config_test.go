package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"liaison/relay"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relayd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// File < environment < flags, and defaults fill the rest.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
listen = "127.0.0.1:1001"
raft_listen = "127.0.0.1:2001"
log_level = "warn"
join = ["127.0.0.1:9001"]
client_tls = false
`)
	env := map[string]string{"RELAYD_RAFT_LISTEN": "127.0.0.1:2002", "RELAYD_LOG_LEVEL": "error", "RELAYD_JOIN": "127.0.0.1:9002, 127.0.0.1:9003"}
	c, err := loadConfig([]string{"--config", file, "--log-level", "debug"}, envOf(env), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1001" {
		t.Errorf("listen %q: the file's value should stand", c.Listen)
	}
	if c.RaftListen != "127.0.0.1:2002" {
		t.Errorf("raft_listen %q: the environment should beat the file", c.RaftListen)
	}
	if c.LogLevel != "debug" {
		t.Errorf("log_level %q: the flag should beat the environment and the file", c.LogLevel)
	}
	if strings.Join(c.Join, ",") != "127.0.0.1:9002,127.0.0.1:9003" {
		t.Errorf("join %v: the environment list should replace the file's", c.Join)
	}
	if c.DataDir != "liaison-data" || c.LogFormat != "text" {
		t.Errorf("defaults lost: %+v", c)
	}
	// $RELAYD_CONFIG names the file when --config is absent.
	c, err = loadConfig(nil, envOf(map[string]string{"RELAYD_CONFIG": file}), io.Discard, io.Discard)
	if err != nil || c.Listen != "127.0.0.1:1001" {
		t.Fatalf("RELAYD_CONFIG: %+v %v", c, err)
	}
}

// A bad value fails at start with a message naming the field.
func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, file string
		env        map[string]string
		args       []string
		want       string
	}{
		{"bad level in file", `log_level = "loud"`, nil, nil, "log_level"},
		{"unknown key", `listen_addr = "x"`, nil, nil, `unknown key "listen_addr"`},
		{"wrong type", `listen = 7400`, nil, nil, "listen"},
		{"bad listen flag", "", nil, []string{"--listen", "nowhere"}, "listen"},
		{"bad bool env", "", map[string]string{"RELAYD_CLIENT_TLS": "maybe"}, nil, "RELAYD_CLIENT_TLS"},
		{"bad format env", "", map[string]string{"RELAYD_LOG_FORMAT": "xml"}, nil, "log_format"},
		{"partial tls", `tls_ca = "ca.crt"`, nil, nil, "tls_ca, tls_cert and tls_key"},
		{"bad join", "", nil, []string{"--join", "a,b"}, "join"},
		{"bad duration flag", "", nil, []string{"--idle-timeout", "soon"}, "idle-timeout"},
		{"negative duration", `challenge_ttl = "-1s"`, nil, nil, "challenge_ttl"},
		{"bad int env", "", map[string]string{"RELAYD_MAX_OPS_PER_CONN": "many"}, nil, "RELAYD_MAX_OPS_PER_CONN"},
		{"bad float flag", "", nil, []string{"--msg-rate", "fast"}, "msg-rate"},
		{"frame too big", `max_frame_bytes = 99999999`, nil, nil, "max_frame_bytes"},
		{"idle below ping", "", nil, []string{"--ping-interval", "1m", "--idle-timeout", "30s"}, "idle_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			_, err := loadConfig(args, envOf(tc.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestPrintConfig(t *testing.T) {
	var out strings.Builder
	_, err := loadConfig([]string{"--print-config", "--listen", "127.0.0.5:7400", "--client-tls=false"}, envOf(map[string]string{"RELAYD_NODE_ID": "n5"}), io.Discard, &out)
	if !errors.Is(err, errPrinted) {
		t.Fatalf("print-config: %v", err)
	}
	for _, want := range []string{`listen = "127.0.0.5:7400"`, `node_id = "n5"`, `data_dir = "liaison-data"`, "client_tls = false"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed config lacks %s:\n%s", want, out.String())
		}
	}
}

// --admin is repeatable and replaces the file's admins; each value is a
// token, a token file or a hex public key; a bad one fails naming admins.
func TestConfigAdmins(t *testing.T) {
	p := newPerson(t, "alice")
	key := strings.Repeat("ab", 32)
	file := writeConfig(t, `admins = ["`+key+`"]`)
	c, err := loadConfig([]string{"--config", file}, envOf(nil), io.Discard, io.Discard)
	if err != nil || len(c.Admins) != 1 {
		t.Fatalf("file: %v %v", c.Admins, err)
	}
	c, err = loadConfig([]string{"--config", file, "--admin", p.tokenFile, "--admin", p.id.Token().String()}, envOf(nil), io.Discard, io.Discard)
	if err != nil || len(c.Admins) != 2 {
		t.Fatalf("flags: %v %v", c.Admins, err)
	}
	admins, err := parseAdmins(c.Admins)
	if err != nil || admins[0].Name != "alice" || admins[0].Key != p.id.PublicKey() {
		t.Fatalf("parsed %+v %v", admins, err)
	}
	if _, err := loadConfig([]string{"--admin", "nope"}, envOf(nil), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "admins") {
		t.Fatalf("bad admin: %v", err)
	}
}

// The limits come from the file, the environment and the flags like every
// setting, and reach the relay's configuration.
func TestLimitSettings(t *testing.T) {
	file := writeConfig(t, `
challenge_ttl = "10s"
max_frame_bytes = 65536
msg_rate = 50.5
slow_consumer_timeout = "2m"
`)
	env := map[string]string{"RELAYD_MAX_CONNS_PER_ADDR": "-1", "RELAYD_IDLE_TIMEOUT": "90s"}
	c, err := loadConfig([]string{"--config", file, "--msg-burst", "7", "--require-channel-binding", "--read-header-timeout", "3s"}, envOf(env), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := c.relayConfig(relay.Config{})
	if r.ChallengeTTL != 10*time.Second || r.MaxFrame != 65536 || r.MsgRate != 50.5 || r.MsgBurst != 7 || r.SlowConsumerTimeout != 2*time.Minute ||
		r.MaxConnsPerAddr != -1 || r.IdleTimeout != 90*time.Second || !r.RequireChannelBinding || c.ReadHeaderTimeout != 3*time.Second {
		t.Fatalf("relay config %+v, read header timeout %s", r, c.ReadHeaderTimeout)
	}
	// Defaults match the relay's.
	d, err := loadConfig(nil, envOf(nil), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if def := (relay.Config{}).WithDefaults(); d.relayConfig(relay.Config{}).MsgRate != def.MsgRate || d.QueueBytes != def.QueueBytes || d.ReadHeaderTimeout != defaultReadHeaderTimeout {
		t.Fatalf("defaults %+v", d)
	}
}

// deploy/relayd.toml.example loads, and shows every key (set or commented
// out) but the tests' open_ops.
func TestExampleConfig(t *testing.T) {
	const file = "../../deploy/relayd.toml.example"
	if _, err := loadConfig([]string{"--config", file}, envOf(nil), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[config]()
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "-" || key == "open_ops" {
			continue
		}
		if !regexp.MustCompile(`(?m)^(# )?` + key + ` = `).Match(b) {
			t.Errorf("the example does not show %s", key)
		}
	}
}
