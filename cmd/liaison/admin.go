package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"liaison/cluster"
	"liaison/cluster/pki"
	"liaison/crypto"
)

const adminUsage = `admin commands (talk to the relays' /cluster/ endpoints):
  admin status                     every node in --relay: state, term, commit and
                                   applied index, lag behind the leader
  admin join NODE-ID RAFT-ADDR     add a node (normally done by relayd --join)
  admin remove NODE-ID             remove a node from the cluster
  admin snapshot FILE              write a backup of a node's logs to FILE;
                                   start a new cluster from it with
                                   relayd --restore FILE --data-dir EMPTY-DIR
  admin admins list                the cluster admins (fingerprint, name, key)
  admin admins add TOKEN|FILE|KEY [--name NAME]
                                   make an identity a cluster admin
  admin admins remove FINGERPRINT|NAME|KEY
                                   remove a cluster admin (not the last)
  admin audit [--out FILE] [--in FILE] [--head HASH]
                                   print the audit trail (time, actor, action,
                                   details), verifying every signature and the
                                   chain; exit 1 on any failure. --out saves the
                                   trail, --in verifies a saved one, --head checks
                                   that it ends at HASH
  admin retention OP [--max-age DURATION] [--max-count N] [--clear]
                                   show or set an operation's retention (entries
                                   older or beyond the newest N are removed;
                                   roster commits are kept)
  admin ca init DIR                create the cluster CA (DIR/ca.crt, DIR/ca.key)
  admin ca node DIR NODE-ID [--host IP-OR-NAME]...
                                   issue a node certificate (DIR/NODE-ID.crt/.key)
  admin ca admin DIR NAME          issue an admin certificate (DIR/NAME.crt/.key)
join, remove, snapshot and admins add|remove are signed with your identity
(--identity); a cluster with admins accepts them only from its admins.`

// nodeStatus is what a node's /cluster/status answers.
type nodeStatus = cluster.StatusReport

func cmdAdmin(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: admin needs a subcommand\n%s", errUsage, adminUsage)
	}
	if args[0] == "ca" {
		return adminCA(e, args[1:])
	}
	fs := e.newFlagSet("admin " + args[0])
	name := fs.String("name", "", "admins add: the admin's name (default: the token's)")
	auditOut := fs.String("out", "", "audit: also write the trail to this file")
	auditIn := fs.String("in", "", "audit: verify this saved trail instead of fetching it")
	auditHead := fs.String("head", "", "audit: the hash (hex) the trail must end with")
	var ret retentionFlags
	if args[0] == "retention" {
		ret.register(fs)
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	tc, err := e.tlsConfig()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	switch args[0] {
	case "status":
		return adminStatus(ctx, e, hc)
	case "join":
		if len(pos) != 2 {
			return fmt.Errorf("%w: admin join NODE-ID RAFT-ADDR", errUsage)
		}
		return adminChange(ctx, e, hc, "join", map[string]string{"id": pos[0], "address": pos[1]})
	case "remove":
		if len(pos) != 1 {
			return fmt.Errorf("%w: admin remove NODE-ID", errUsage)
		}
		return adminChange(ctx, e, hc, "remove", map[string]string{"id": pos[0]})
	case "retention":
		if len(pos) != 1 {
			return fmt.Errorf("%w: admin retention OP [--max-age DURATION] [--max-count N] [--clear]", errUsage)
		}
		return adminRetention(ctx, e, hc, pos[0], &ret)
	case "snapshot":
		if len(pos) != 1 {
			return fmt.Errorf("%w: admin snapshot FILE", errUsage)
		}
		return adminSnapshot(ctx, e, &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, pos[0])
	case "admins":
		return adminAdmins(ctx, e, hc, pos, *name)
	case "audit":
		if len(pos) != 0 {
			return fmt.Errorf("%w: admin audit [--out FILE] [--in FILE] [--head HASH]", errUsage)
		}
		return adminAudit(ctx, e, hc, *auditOut, *auditIn, *auditHead)
	}
	return fmt.Errorf("%w: unknown admin command %q\n%s", errUsage, args[0], adminUsage)
}

// adminBases returns the HTTP base URLs of the relays in --relay.
func adminBases(e *env) ([]string, error) {
	var out []string
	for _, a := range strings.Split(e.relay, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			scheme := "http://"
			if e.tlsCA != "" {
				scheme = "https://"
			}
			out = append(out, scheme+a)
			continue
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("relay address %q: %w", a, err)
		}
		scheme := "http"
		if u.Scheme == "wss" || u.Scheme == "https" {
			scheme = "https"
		}
		out = append(out, scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no relay address", errUsage)
	}
	return out, nil
}

func getStatus(ctx context.Context, hc *http.Client, base string) (*nodeStatus, error) {
	var st nodeStatus
	if err := getJSON(ctx, hc, base, "/cluster/status", "status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// getJSON fetches base+path and decodes the JSON answer (at most 1 MiB)
// into v; what names it in errors.
func getJSON(ctx context.Context, hc *http.Client, base, path, what string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpFailure(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s: bad %s: %w", base, what, err)
	}
	return nil
}

func httpFailure(resp *http.Response) error {
	var body struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
}

func adminStatus(ctx context.Context, e *env, hc *http.Client) error {
	bases, err := adminBases(e)
	if err != nil {
		return err
	}
	type row struct {
		base string
		st   *nodeStatus
		err  error
	}
	rows := make([]row, len(bases))
	var leaderCommit uint64
	var config *nodeStatus
	for i, b := range bases {
		st, err := getStatus(ctx, hc, b)
		rows[i] = row{base: b, st: st, err: err}
		if err == nil {
			if st.Node.State == "Leader" {
				leaderCommit = st.Node.CommitIndex
			}
			if config == nil || st.Node.State == "Leader" {
				config = st
			}
		}
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tCLIENTS\tSTATE\tLEADER\tTERM\tCOMMIT\tAPPLIED\tLAG")
	seen := map[string]bool{}
	failed := 0
	for _, r := range rows {
		if r.err != nil {
			failed++
			fmt.Fprintf(w, "?\t%s\tunreachable: %v\t\t\t\t\t\n", hostOf(r.base), r.err)
			continue
		}
		n := r.st.Node
		seen[n.NodeID] = true
		lag := "?"
		if leaderCommit > 0 {
			lag = fmt.Sprint(int64(leaderCommit) - int64(n.AppliedIndex))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", n.NodeID, hostOf(r.base), n.State, n.LeaderID, n.Term, n.CommitIndex, n.AppliedIndex, lag)
	}
	if config != nil {
		for _, s := range config.Servers {
			if !seen[s.ID] {
				fmt.Fprintf(w, "%s\t(not in --relay)\t%s, raft %s\t\t\t\t\t\n", s.ID, strings.ToLower(s.Suffrage), s.Address)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if failed == len(rows) {
		return fmt.Errorf("no relay answered")
	}
	return nil
}

func adminChange(ctx context.Context, e *env, hc *http.Client, what string, body map[string]string) error {
	bases, err := adminBases(e)
	if err != nil {
		return err
	}
	signer, err := e.adminSigner()
	if err != nil {
		return err
	}
	defer signer.Destroy()
	b, _ := json.Marshal(body)
	var last error
	for _, base := range bases {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/cluster/"+what, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := signAdminRequest(ctx, hc, req, base, signer, what, body); err != nil {
			last = err
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			fmt.Fprintf(e.stdout, "%s %s: done\n", what, body["id"])
			return nil
		}
		last = httpFailure(resp)
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest {
			break
		}
	}
	return fmt.Errorf("admin %s: %w", what, last)
}

// adminSnapshot downloads a backup from the first relay that serves one,
// writing it to a temporary file that is renamed into place once complete,
// and showing progress on stderr.
func adminSnapshot(ctx context.Context, e *env, hc *http.Client, file string) error {
	bases, err := adminBases(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, bases[0]+"/cluster/backup", nil)
	if err != nil {
		return err
	}
	signer, err := e.adminSigner()
	if err != nil {
		return err
	}
	err = signAdminRequest(ctx, hc, req, bases[0], signer, crypto.AdminActionBackup, nil)
	signer.Destroy()
	if err != nil {
		return fmt.Errorf("admin snapshot: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin snapshot: %w", httpFailure(resp))
	}
	tmp := file + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	pw := &progressWriter{w: f, out: e.stderr, every: 8 << 20}
	n, err := io.Copy(pw, resp.Body)
	if pw.next > 0 {
		fmt.Fprintln(e.stderr)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("admin snapshot: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d bytes) from %s\n", file, n, hostOf(bases[0]))
	return nil
}

// progressWriter reports bytes written every `every` bytes.
type progressWriter struct {
	w     io.Writer
	out   io.Writer
	every int64
	n     int64
	next  int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n >= p.next {
		fmt.Fprintf(p.out, "\r%d MiB written", p.n>>20)
		p.next = p.n + p.every
	}
	return n, err
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return base
}

// adminCA creates the cluster CA and issues certificates from it.
func adminCA(e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: admin ca init|node|admin", errUsage)
	}
	fs := e.newFlagSet("admin ca " + args[0])
	var hosts multiFlag
	fs.Var(&hosts, "host", "IP address or DNS name the node is reached at (repeatable)")
	validity := fs.Duration("validity", 0, "certificate lifetime (default: 10 years for the CA, 1 year otherwise)")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	now := time.Now()
	switch args[0] {
	case "init":
		if len(pos) != 1 {
			return fmt.Errorf("%w: admin ca init DIR", errUsage)
		}
		v := *validity
		if v == 0 {
			v = 10 * 365 * 24 * time.Hour
		}
		cert, key, err := pki.NewCA(rand.Reader, now, "liaison-cluster-ca", v)
		if err != nil {
			return err
		}
		cf, kf, err := pki.WriteFiles(pos[0], "ca", cert, key)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "cluster CA: %s (give to every node and client)\nCA key:     %s (keep offline; it issues certificates)\n", cf, kf)
		return nil
	case "node", "admin":
		if len(pos) != 2 {
			return fmt.Errorf("%w: admin ca %s DIR NAME", errUsage, args[0])
		}
		dir, name := pos[0], pos[1]
		files, err := pki.ReadFiles(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
		if err != nil {
			return fmt.Errorf("read the CA (run admin ca init %s first): %w", dir, err)
		}
		v := *validity
		if v == 0 {
			v = 365 * 24 * time.Hour
		}
		req := pki.Request{Name: name, Kind: pki.KindNode, Hosts: hosts, Validity: v}
		if args[0] == "admin" {
			req.Kind, req.Hosts = pki.KindAdmin, nil
		}
		cert, key, err := pki.Issue(rand.Reader, now, files[0], files[1], req)
		if err != nil {
			return err
		}
		cf, kf, err := pki.WriteFiles(dir, name, cert, key)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s certificate: %s\nkey:             %s\n", req.Kind, cf, kf)
		return nil
	}
	return fmt.Errorf("%w: admin ca init|node|admin", errUsage)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
