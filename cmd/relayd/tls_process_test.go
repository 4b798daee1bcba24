package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/cluster/pki"
)

// cli runs the liaison binary and returns its combined output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, liaisonBinary(t), args...).CombinedOutput()
	return string(out), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatalf("liaison %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// A cluster secured with certificates from `liaison admin ca`: nodes join
// over mutual TLS, clients use wss with the CA, cluster changes need an admin
// certificate, and a node with a certificate from another CA cannot join.
func TestTLSClusterWithAdminCA(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of relayd processes")
	}
	pkiDir, rogueDir := t.TempDir(), t.TempDir()
	mustCLI(t, "admin", "ca", "init", pkiDir)
	mustCLI(t, "admin", "ca", "init", rogueDir)
	for i := 1; i <= 3; i++ {
		mustCLI(t, "admin", "ca", "node", pkiDir, fmt.Sprintf("n%d", i), "--host", fmt.Sprintf("127.0.0.%d", i))
	}
	mustCLI(t, "admin", "ca", "node", rogueDir, "rogue", "--host", "127.0.0.4")
	mustCLI(t, "admin", "ca", "admin", pkiDir, "ops")
	ca := filepath.Join(pkiDir, "ca.crt")
	tlsArgs := func(dir, id string) []string {
		return []string{"--tls-ca", ca, "--tls-cert", filepath.Join(dir, id+".crt"), "--tls-key", filepath.Join(dir, id+".key"), "--client-tls", "--open-ops"}
	}

	ops := newPerson(t, "ops")
	var nodes []*procNode
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("127.0.0.%d", i)
		n := &procNode{id: fmt.Sprintf("n%d", i), dataDir: t.TempDir(), listen: freePortOn(t, host), raft: freePortOn(t, host)}
		args := tlsArgs(pkiDir, n.id)
		if i > 1 {
			args = append(args, "--join", nodes[0].listen)
		} else {
			args = append(args, "--admin", ops.tokenFile)
		}
		n.proc = startProcArgsTLS(t, n.dataDir, n.listen, n.raft, n.id, ca, args...)
		nodes = append(nodes, n)
	}
	relays := strings.Join(listens(nodes), ",")
	admin := []string{"--relay", relays, "--tls-ca", ca, "--tls-cert", filepath.Join(pkiDir, "ops.crt"), "--tls-key", filepath.Join(pkiDir, "ops.key"), "admin"}
	waitUntil(t, 30*time.Second, func() bool {
		out, err := cli(t, append(admin, "status")...)
		return err == nil && strings.Count(out, "Leader ") == 1 && strings.Count(out, "Follower ") == 2
	})

	// A client over wss, verifying the nodes against the CA, on a follower.
	tc, err := pki.LoadClientTLS(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, i := range []int{2, 0, 1} { // a follower first
		urls = append(urls, "wss://"+nodes[i].listen+"/ws")
	}
	c := dialClientTLS(t, tc, urls...)
	ctx := context.Background()
	r, err := c.Publish(ctx, "secure-op", []byte("over tls"))
	if err != nil || r.Seq != 1 {
		t.Fatalf("publish over wss: %+v %v", r, err)
	}
	s, err := dialClientTLS(t, tc, "wss://"+nodes[0].listen+"/ws").Subscribe(ctx, "secure-op", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := receive(t, s, 1, 1); string(got[0].Envelope) != "over tls" {
		t.Fatalf("got %q", got[0].Envelope)
	}

	// Cluster changes need the admin certificate, even when signed by an
	// admin.
	out, err := cliAs(t, ops, "--relay", relays, "--tls-ca", ca, "admin", "remove", "n3")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("remove without an admin certificate: %v\n%s", err, out)
	}
	// The joins are in the audit trail with the node certificates.
	out, err = cliAs(t, nil, append(admin, "audit")...)
	if err != nil || strings.Count(out, "node-join") != 2 || !strings.Contains(out, `cert="n3"`) || strings.Count(out, "(verified)") != 2 {
		t.Fatalf("audit of a TLS cluster: %v\n%s", err, out)
	}

	// A node whose certificate comes from another CA cannot join: relayd
	// gives up with a certificate error instead of retrying.
	rogue := exec.Command(relaydBinary(t), "--data-dir", t.TempDir(), "--listen", freePortOn(t, "127.0.0.4"),
		"--raft-listen", freePortOn(t, "127.0.0.4"), "--node-id", "rogue", "--join", nodes[0].listen, "--client-tls",
		"--tls-ca", filepath.Join(rogueDir, "ca.crt"), "--tls-cert", filepath.Join(rogueDir, "rogue.crt"), "--tls-key", filepath.Join(rogueDir, "rogue.key"))
	var rlog safeBuffer
	rogue.Stderr = &rlog
	if err := rogue.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rogue.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(rlog.String(), "join") {
			t.Fatalf("rogue node: exit %v\n%s", err, rlog.String())
		}
	case <-time.After(45 * time.Second):
		_ = rogue.Process.Kill()
		<-done
		t.Fatalf("rogue node still trying to join after 45 s:\n%s", rlog.String())
	}
	if out := mustCLI(t, append(admin, "status")...); strings.Contains(out, "rogue") {
		t.Fatalf("rogue node in the configuration:\n%s", out)
	}

	// With the admin certificate, remove works and the cluster stays
	// writable; the client, connected to the removed node, moves on.
	if out, err := cliAs(t, ops, append(admin, "remove", "n3")...); err != nil {
		t.Fatalf("admin remove with certificate and signature: %v\n%s", err, out)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if r, err := c.Publish(pctx, "secure-op", []byte("after remove")); err != nil || r.Seq != 2 {
		l := nodes[0].log() + "\n----- n3:\n" + nodes[2].log()
		t.Fatalf("publish after removing the client's node: %+v %v\nn3 log:\n%s", r, err, l[max(0, len(l)-6000):])
	}
}
