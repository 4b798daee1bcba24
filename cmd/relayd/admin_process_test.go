package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/clients/session"
	"liaison/cluster"
	"liaison/crypto"
)

const testPassphrase = "correct horse battery staple"

// person is an identity with its (cheaply encrypted) identity file and a
// file holding its public token.
type person struct {
	id        *crypto.Identity
	file      string
	tokenFile string
	home      string
}

func newPerson(t testing.TB, name string) *person {
	t.Helper()
	dir := t.TempDir()
	p := &person{file: filepath.Join(dir, "identity"), tokenFile: filepath.Join(dir, "token"), home: dir}
	id, err := session.CreateIdentityFile(p.file, name, []byte(testPassphrase), crypto.KDFParams{Time: 1, Memory: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.id = id
	if err := os.WriteFile(p.tokenFile, []byte(id.Token().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cliAs runs the liaison CLI as p (nil: no identity) and returns its
// combined output.
func cliAs(t testing.TB, p *person, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, liaisonBinary(t), args...)
	cmd.Env = append(os.Environ(), "LIAISON_PASSPHRASE="+testPassphrase)
	if p != nil {
		cmd.Env = append(cmd.Env, "LIAISON_IDENTITY="+p.file, "LIAISON_HOME="+p.home)
	} else {
		cmd.Env = append(cmd.Env, "LIAISON_IDENTITY="+filepath.Join(t.TempDir(), "none"), "LIAISON_HOME="+t.TempDir())
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// signedHeader returns an admin request header value signed by id.
func signedHeader(t testing.TB, id *crypto.Identity, action, node string, args map[string]string) string {
	t.Helper()
	r, err := crypto.NewAdminRequest(rand.Reader, id, action, node, time.Now().UnixMilli(), args)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(r.Encode())
}

// getBackup fetches /cluster/backup with the given admin header.
func getBackup(t testing.TB, listen, header string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+listen+"/cluster/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(cluster.AdminRequestHeader, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func adminsOf(t testing.TB, listen string) cluster.AdminsReport {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/cluster/admins")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep cluster.AdminsReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// Cluster admins and the audit trail, with three relayd processes and the
// liaison CLI: the first node takes its admin from --admin; a non-admin
// cannot remove a node or change the admin list; an admin can; a replayed
// request is refused; the trail after a join, a roster change and admin
// actions verifies, and a tampered copy does not.
func TestClusterAdminsAndAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	alice, bob, eve := newPerson(t, "alice"), newPerson(t, "bob"), newPerson(t, "eve")
	nodes := startClusterWith(t, 3, "--admin", alice.tokenFile)
	relays := strings.Join(listens(nodes), ",")
	waitUntil(t, 30*time.Second, func() bool {
		_, count, err := clusterStatus(nodes[2].listen)
		return err == nil && count == 3
	})
	if rep := adminsOf(t, nodes[1].listen); len(rep.Admins) != 1 || rep.Admins[0].Name != "alice" {
		t.Fatalf("admins after bootstrap: %+v", rep)
	}
	if !strings.Contains(nodes[0].log(), "cluster admins bootstrapped from the configuration") {
		t.Fatalf("n1 does not log the bootstrap:\n%s", nodes[0].log())
	}

	// A non-admin cannot remove a node or change the admin list.
	out, err := cliAs(t, eve, "--relay", relays, "admin", "remove", "n3")
	if err == nil || !strings.Contains(out, "not a cluster admin") {
		t.Fatalf("eve removes n3: %v\n%s", err, out)
	}
	out, err = cliAs(t, eve, "--relay", relays, "admin", "admins", "add", eve.tokenFile)
	if err == nil || !strings.Contains(out, "not a cluster admin") {
		t.Fatalf("eve adds herself: %v\n%s", err, out)
	}
	// Nor can a request with no signature.
	out, err = cliAs(t, nil, "--relay", relays, "admin", "remove", "n3")
	if err == nil {
		t.Fatalf("unsigned remove: %s", out)
	}
	if _, count, _ := clusterStatus(nodes[0].listen); count != 3 {
		t.Fatalf("refused removes changed the cluster: %d servers", count)
	}

	// A roster change (an operation created with the CLI).
	if out, err := cliAs(t, alice, "--relay", relays, "op", "create", "audit-op"); err != nil {
		t.Fatalf("op create: %v\n%s", err, out)
	}

	// An admin adds another; the new admin acts.
	if out, err := cliAs(t, alice, "--relay", relays, "admin", "admins", "add", bob.tokenFile); err != nil {
		t.Fatalf("alice adds bob: %v\n%s", err, out)
	}
	out, err = cliAs(t, nil, "--relay", relays, "admin", "admins", "list")
	if err != nil || !strings.Contains(out, "bob") || !strings.Contains(out, alice.id.Fingerprint()) {
		t.Fatalf("admins list: %v\n%s", err, out)
	}

	// A replayed request is refused.
	h := signedHeader(t, bob.id, crypto.AdminActionBackup, "n2", nil)
	if resp, body := getBackup(t, nodes[1].listen, h); resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("signed backup: %s %q", resp.Status, body[:min(len(body), 200)])
	}
	if resp, body := getBackup(t, nodes[1].listen, h); resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("replayed")) {
		t.Fatalf("replayed backup: %s %s", resp.Status, body)
	}
	// ... also on another node, and a request addressed to another node.
	if resp, body := getBackup(t, nodes[0].listen, h); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("backup replayed to n1: %s %s", resp.Status, body)
	}

	if out, err := cliAs(t, bob, "--relay", relays, "admin", "remove", "n3"); err != nil {
		t.Fatalf("bob removes n3: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, func() bool {
		_, count, err := clusterStatus(nodes[0].listen)
		return err == nil && count == 2
	})

	// The trail verifies and shows what happened.
	file := filepath.Join(t.TempDir(), "audit.bin")
	out, err = cliAs(t, nil, "--relay", nodes[1].listen+","+nodes[0].listen, "admin", "audit", "--out", file)
	if err != nil {
		t.Fatalf("admin audit: %v\n%s", err, out)
	}
	t.Logf("liaison admin audit:\n%s", out)
	for _, want := range []string{"admins-bootstrap", "node-join", "roster-commit", "op=audit-op", "admins-add", "backup", "remove", "every signature and the chain verify", bob.id.Fingerprint(), nodes[0].listen + " hold the same entry"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") {
		t.Fatalf("audit output has failures:\n%s", out)
	}
	// Refused requests left no entry: exactly one remove and one backup.
	if strings.Count(out, " remove ") != 1 || strings.Count(out, " backup ") != 1 {
		t.Fatalf("audit output has refused requests:\n%s", out)
	}

	// A tampered copy does not verify: bob's name in alice's signed
	// admins-add statement changed to "rob".
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(raw, []byte("bob"))
	if i < 0 {
		t.Fatal("no \"bob\" in the saved trail")
	}
	raw[i] = 'r'
	bad := filepath.Join(t.TempDir(), "tampered.bin")
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = cliAs(t, nil, "admin", "audit", "--in", bad)
	if err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("tampered trail: %v\n%s", err, out)
	}
	t.Logf("liaison admin audit --in tampered:\n%s", out)
	// The saved copy, untouched, verifies offline.
	if out, err := cliAs(t, nil, "admin", "audit", "--in", file); err != nil {
		t.Fatalf("saved trail: %v\n%s", err, out)
	}
}

// A single node with no admins configured says so, and accepts cluster
// changes from loopback signed by any identity, auditing them.
func TestNoAdminsConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relayd processes")
	}
	listen := freePort(t)
	p := startProc(t, t.TempDir(), listen, freePort(t))
	if !strings.Contains(p.log(), "no cluster admins configured") {
		t.Fatalf("no warning about missing admins:\n%s", p.log())
	}
	carol := newPerson(t, "carol")
	if resp, body := getBackup(t, listen, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned backup: %s %s", resp.Status, body)
	}
	if resp, _ := getBackup(t, listen, signedHeader(t, carol.id, crypto.AdminActionBackup, "n1", nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed backup without admins: %s", resp.Status)
	}
	// The first admin, added from loopback, closes the door to others.
	if out, err := cliAs(t, carol, "--relay", listen, "admin", "admins", "add", carol.tokenFile); err != nil {
		t.Fatalf("carol adds herself: %v\n%s", err, out)
	}
	if resp, _ := getBackup(t, listen, signedHeader(t, newPerson(t, "dave").id, crypto.AdminActionBackup, "n1", nil)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dave's backup after carol became admin: %s", resp.Status)
	}
	out, err := cliAs(t, nil, "--relay", listen, "admin", "audit")
	if err != nil || !strings.Contains(out, "admins-add") || !strings.Contains(out, fmt.Sprint(carol.id.Fingerprint())) {
		t.Fatalf("audit: %v\n%s", err, out)
	}
}
