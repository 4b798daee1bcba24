package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type ca struct{ cert, key []byte }

func newCA(t *testing.T, name string) ca {
	t.Helper()
	c, k, err := NewCA(rand.Reader, t0, name, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca{c, k}
}

func (c ca) issue(t *testing.T, req Request) (cert, key []byte) {
	t.Helper()
	if req.Validity == 0 {
		req.Validity = 30 * 24 * time.Hour
	}
	cert, key, err := Issue(rand.Reader, t0, c.cert, c.key, req)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func (c ca) nodeTLS(t *testing.T, id string) *tls.Config {
	t.Helper()
	cert, key := c.issue(t, Request{Name: id, Kind: KindNode, Hosts: []string{"127.0.0.1"}})
	cfg, err := NodeTLS(cert, key, c.cert)
	if err != nil {
		t.Fatal(err)
	}
	return withTime(cfg, t0.Add(time.Hour))
}

// withTime makes cfg verify at now (its VerifyConnection reads cfg.Time).
func withTime(cfg *tls.Config, now time.Time) *tls.Config {
	cfg.Time = func() time.Time { return now }
	return cfg
}

func mustCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	cs, err := ParseCertificates(pemBytes)
	if err != nil || len(cs) != 1 {
		t.Fatalf("parse certificate: %v (%d)", err, len(cs))
	}
	return cs[0]
}

func mustPool(t *testing.T, caPEM []byte) *x509.CertPool {
	t.Helper()
	p, err := CertPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// handshake runs a TLS handshake over loopback TCP (kernel-buffered, so a
// side that fails can send its alert without the other reading). The
// client then reads one byte the server writes after its handshake, so a
// TLS 1.3 client learns whether the server accepted its certificate.
func handshake(t *testing.T, server, client *tls.Config) (serverState tls.ConnectionState, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		st  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		_, err = tc.Write([]byte{1})
		done <- result{st: tc.ConnectionState(), err: err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = io.ReadFull(tc, b[:])
	}
	r := <-done
	return r.st, r.err, clientErr
}

func TestPKIIssueRoundTrip(t *testing.T) {
	c := newCA(t, "Liaison-test-CA")
	caCert := mustCert(t, c.cert)
	if !caCert.IsCA || !caCert.BasicConstraintsValid || caCert.MaxPathLen != 0 || !caCert.MaxPathLenZero ||
		caCert.KeyUsage&x509.KeyUsageCertSign == 0 || caCert.Subject.CommonName != "Liaison-test-CA" {
		t.Fatalf("CA certificate: %+v", caCert)
	}
	if err := caCert.CheckSignatureFrom(caCert); err != nil {
		t.Fatalf("CA not self-signed: %v", err)
	}
	if k, err := ParsePrivateKey(c.key); err != nil || !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(caCert.PublicKey) {
		t.Fatalf("CA key: %v", err)
	}

	nodePEM, nodeKey := c.issue(t, Request{Name: "n1", Kind: KindNode, Hosts: []string{"127.0.0.1", "::1", "relay1.example.org"}})
	node := mustCert(t, nodePEM)
	if node.Subject.CommonName != "n1" || node.IsCA {
		t.Fatalf("node subject %v IsCA %v", node.Subject, node.IsCA)
	}
	if len(node.URIs) != 1 || node.URIs[0].String() != "liaison://node/n1" {
		t.Fatalf("node URIs %v", node.URIs)
	}
	if !slices.Equal(node.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("node EKU %v", node.ExtKeyUsage)
	}
	if len(node.IPAddresses) != 2 || !node.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !slices.Equal(node.DNSNames, []string{"relay1.example.org"}) {
		t.Fatalf("node SANs %v %v", node.IPAddresses, node.DNSNames)
	}
	if !node.NotAfter.Equal(t0.Add(30*24*time.Hour)) || !node.NotBefore.Equal(t0.Add(-ClockSkew)) {
		t.Fatalf("node validity %v..%v", node.NotBefore, node.NotAfter)
	}
	if id, err := VerifyNode(mustPool(t, c.cert), []*x509.Certificate{node}, t0); err != nil || id != "n1" {
		t.Fatalf("VerifyNode: %q %v", id, err)
	}
	if _, err := node.Verify(x509.VerifyOptions{Roots: mustPool(t, c.cert), CurrentTime: t0, DNSName: "relay1.example.org"}); err != nil {
		t.Fatalf("node certificate as a server certificate for its host: %v", err)
	}
	if _, err := tls.X509KeyPair(nodePEM, nodeKey); err != nil {
		t.Fatalf("node key pair: %v", err)
	}

	for _, k := range []Kind{KindAdmin, KindClient} {
		certPEM, keyPEM := c.issue(t, Request{Name: "alice@centre", Kind: k})
		cert := mustCert(t, certPEM)
		if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Fatalf("%v EKU %v", k, cert.ExtKeyUsage)
		}
		if want := "liaison://" + k.String() + "/alice@centre"; len(cert.URIs) != 1 || cert.URIs[0].String() != want {
			t.Fatalf("%v URIs %v, want %s", k, cert.URIs, want)
		}
		if gk, name, err := Identity(cert); err != nil || gk != k || name != "alice@centre" {
			t.Fatalf("Identity: %v %q %v", gk, name, err)
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyNode(mustPool(t, c.cert), []*x509.Certificate{cert}, t0); !errors.Is(err, ErrNotNode) {
			t.Fatalf("%v certificate verified as a node: %v", k, err)
		}
	}
	// Two issuances never share a serial.
	a, _ := c.issue(t, Request{Name: "n2", Kind: KindNode})
	b, _ := c.issue(t, Request{Name: "n2", Kind: KindNode})
	if mustCert(t, a).SerialNumber.Cmp(mustCert(t, b).SerialNumber) == 0 {
		t.Fatal("repeated serial number")
	}
}

func TestPKINodeTLSMutual(t *testing.T) {
	c := newCA(t, "ca")
	srv, cli := c.nodeTLS(t, "n1"), c.nodeTLS(t, "n2")
	st, serr, cerr := handshake(t, srv, cli)
	if serr != nil || cerr != nil {
		t.Fatalf("handshake between nodes of one CA: server %v, client %v", serr, cerr)
	}
	if st.Version != tls.VersionTLS13 || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "n2" {
		t.Fatalf("server saw %x %v", st.Version, st.PeerCertificates)
	}
	// The same config serves both roles.
	if _, serr, cerr := handshake(t, cli, srv); serr != nil || cerr != nil {
		t.Fatalf("roles swapped: server %v, client %v", serr, cerr)
	}
	if _, serr, cerr := handshake(t, srv, srv); serr != nil || cerr != nil {
		t.Fatalf("one config both ends: server %v, client %v", serr, cerr)
	}
}

func TestPKIExpiredCertificateRejected(t *testing.T) {
	c := newCA(t, "ca")
	certPEM, keyPEM := c.issue(t, Request{Name: "n1", Kind: KindNode, Validity: time.Hour})
	cert := mustCert(t, certPEM)
	pool := mustPool(t, c.cert)
	if _, err := VerifyNode(pool, []*x509.Certificate{cert}, t0.Add(30*time.Minute)); err != nil {
		t.Fatalf("within validity: %v", err)
	}
	for _, now := range []time.Time{t0.Add(time.Hour + time.Second), t0.Add(-ClockSkew - time.Second)} {
		if _, err := VerifyNode(pool, []*x509.Certificate{cert}, now); !errors.Is(err, ErrUntrusted) {
			t.Fatalf("at %v: %v", now, err)
		}
	}

	expired, err := NodeTLS(certPEM, keyPEM, c.cert)
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(2 * time.Hour)
	withTime(expired, later)
	good := withTime(c.nodeTLS(t, "n2"), later) // valid for 30 days
	// An expired client is refused by the server...
	if _, serr, cerr := handshake(t, good, expired); serr == nil || cerr == nil {
		t.Fatalf("expired client accepted: server %v, client %v", serr, cerr)
	}
	// ...and an expired server by the client, in VerifyConnection.
	if _, serr, cerr := handshake(t, expired, good); !errors.Is(cerr, ErrUntrusted) || serr == nil {
		t.Fatalf("expired server accepted: server %v, client %v", serr, cerr)
	}
	// Before it expires the same pair works.
	withTime(expired, t0.Add(time.Minute))
	withTime(good, t0.Add(time.Minute))
	if _, serr, cerr := handshake(t, good, expired); serr != nil || cerr != nil {
		t.Fatalf("valid: server %v, client %v", serr, cerr)
	}
}

func TestPKIOtherCARejected(t *testing.T) {
	a, b := newCA(t, "ca-a"), newCA(t, "ca-b")
	nodeA, nodeB := a.nodeTLS(t, "n1"), b.nodeTLS(t, "n4")
	if _, serr, cerr := handshake(t, nodeA, nodeB); serr == nil || !errors.Is(cerr, ErrUntrusted) {
		t.Fatalf("node of CA B dialing a node of CA A: server %v, client %v", serr, cerr)
	}
	if _, serr, cerr := handshake(t, nodeB, nodeA); serr == nil || !errors.Is(cerr, ErrUntrusted) {
		t.Fatalf("node of CA A dialing a node of CA B: server %v, client %v", serr, cerr)
	}
	// An attacker holding a CA-B node certificate and CA A's certificate
	// (which is public) gets past its own side but is refused by the server.
	bCert, bKey := b.issue(t, Request{Name: "n1", Kind: KindNode, Hosts: []string{"127.0.0.1"}})
	pair, err := tls.X509KeyPair(bCert, bKey)
	if err != nil {
		t.Fatal(err)
	}
	attacker := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: mustPool(t, a.cert), ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS13, Time: func() time.Time { return t0.Add(time.Hour) }}
	if _, serr, cerr := handshake(t, nodeA, attacker); serr == nil || cerr == nil {
		t.Fatalf("certificate of another CA accepted: server %v, client %v", serr, cerr)
	}
	// No certificate at all.
	anon := attacker.Clone()
	anon.Certificates = nil
	if _, serr, cerr := handshake(t, nodeA, anon); serr == nil || cerr == nil {
		t.Fatalf("client without a certificate accepted: server %v, client %v", serr, cerr)
	}
	// VerifyNode on its own.
	if _, err := VerifyNode(mustPool(t, a.cert), []*x509.Certificate{mustCert(t, bCert)}, t0); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("VerifyNode of another CA's certificate: %v", err)
	}
	// A node cannot even be configured with a certificate of another CA.
	if _, err := NodeTLS(bCert, bKey, a.cert); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("NodeTLS with a certificate of another CA: %v", err)
	}
}

func TestPKIAdminAndClientRejectedAsNodePeer(t *testing.T) {
	c := newCA(t, "ca")
	node := c.nodeTLS(t, "n1")
	for _, k := range []Kind{KindAdmin, KindClient} {
		certPEM, keyPEM := c.issue(t, Request{Name: "mallory", Kind: k})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		// As a dialer: crypto/tls's own client-certificate check passes (it
		// has ClientAuth and chains to the CA); the node check refuses it.
		dialer := &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if _, serr, cerr := handshake(t, node, dialer); !errors.Is(serr, ErrNotNode) || cerr == nil {
			t.Fatalf("%v certificate accepted as a node dialer: server %v, client %v", k, serr, cerr)
		}
		// As a listener a node dials.
		listener := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13}
		if _, serr, cerr := handshake(t, listener, node); !errors.Is(cerr, ErrNotNode) || serr == nil {
			t.Fatalf("%v certificate accepted as a node listener: server %v, client %v", k, serr, cerr)
		}
		// And a node cannot run on it.
		if _, err := NodeTLS(certPEM, keyPEM, c.cert); !errors.Is(err, ErrNotNode) {
			t.Fatalf("NodeTLS with a %v certificate: %v", k, err)
		}
	}
}

func TestPKIServerAndClientTLS(t *testing.T) {
	c := newCA(t, "ca")
	nodeCert, nodeKey := c.issue(t, Request{Name: "n1", Kind: KindNode, Hosts: []string{"127.0.0.1"}})
	adminCert, adminKey := c.issue(t, Request{Name: "alice", Kind: KindAdmin})
	srv, err := ServerTLS(nodeCert, nodeKey, c.cert)
	if err != nil {
		t.Fatal(err)
	}
	srv.Time = func() time.Time { return t0.Add(time.Hour) }
	admin, err := ClientTLS(c.cert, adminCert, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	admin.ServerName = "127.0.0.1"
	admin.Time = srv.Time
	st, serr, cerr := handshake(t, srv, admin)
	if serr != nil || cerr != nil {
		t.Fatalf("admin client: server %v, client %v", serr, cerr)
	}
	if k, name, err := PeerIdentity(&st); err != nil || k != KindAdmin || name != "alice" {
		t.Fatalf("PeerIdentity: %v %q %v", k, name, err)
	}
	// A client without a certificate connects; it has no identity.
	plain, err := ClientTLS(c.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain.ServerName, plain.Time = "127.0.0.1", srv.Time
	st, serr, cerr = handshake(t, srv, plain)
	if serr != nil || cerr != nil {
		t.Fatalf("anonymous client: server %v, client %v", serr, cerr)
	}
	if _, _, err := PeerIdentity(&st); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("PeerIdentity of an anonymous client: %v", err)
	}
	// The host name is checked for client-facing TLS.
	wrong := plain.Clone()
	wrong.ServerName = "elsewhere.example"
	if _, _, cerr := handshake(t, srv, wrong); cerr == nil {
		t.Fatal("wrong host name accepted")
	}
	// A client of another CA refuses the server.
	other := newCA(t, "other")
	stranger, err := ClientTLS(other.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger.ServerName, stranger.Time = "127.0.0.1", srv.Time
	if _, _, cerr := handshake(t, srv, stranger); cerr == nil {
		t.Fatal("server of another CA accepted")
	}
	// An admin certificate cannot serve.
	if _, err := ServerTLS(adminCert, adminKey, nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ServerTLS with an admin certificate: %v", err)
	}
}

func TestPKIFiles(t *testing.T) {
	c := newCA(t, "ca")
	dir := filepath.Join(t.TempDir(), "tls")
	caFile, caKeyFile, err := WriteFiles(dir, "ca", c.cert, c.key)
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey := c.issue(t, Request{Name: "n1", Kind: KindNode})
	certFile, keyFile, err := WriteFiles(dir, "n1", nodeCert, nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for f, want := range map[string]os.FileMode{caKeyFile: 0o600, keyFile: 0o600, dir: 0o700} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Fatalf("%s mode %v, want %v", f, fi.Mode().Perm(), want)
			}
		}
	}
	if b, _ := os.ReadFile(caKeyFile); !bytes.Equal(b, c.key) {
		t.Fatal("CA key file differs")
	}
	// Never overwrites, and leaves the existing files alone.
	other := newCA(t, "other")
	if _, _, err := WriteFiles(dir, "ca", other.cert, other.key); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	if b, _ := os.ReadFile(caKeyFile); !bytes.Equal(b, c.key) {
		t.Fatal("CA key overwritten")
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`} {
		if _, _, err := WriteFiles(dir, bad, c.cert, c.key); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	// A certificate alone.
	if cf, kf, err := WriteFiles(dir, "ca-copy", c.cert, nil); err != nil || kf != "" || cf == "" {
		t.Fatalf("certificate only: %q %q %v", cf, kf, err)
	}

	if _, err := LoadNodeTLS(certFile, keyFile, caFile); err != nil {
		t.Fatalf("LoadNodeTLS: %v", err)
	}
	if _, err := LoadNodeTLS(certFile, keyFile, filepath.Join(dir, "missing.crt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadNodeTLS with a missing file: %v", err)
	}
	if _, err := LoadNodeTLS(certFile, "", caFile); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("LoadNodeTLS without a key: %v", err)
	}
	// Swapped files are refused, not half-used.
	if _, err := LoadNodeTLS(caFile, caKeyFile, caFile); !errors.Is(err, ErrNotNode) {
		t.Fatalf("LoadNodeTLS with the CA as the node: %v", err)
	}
	if _, err := LoadServerTLS(certFile, keyFile, ""); err != nil {
		t.Fatalf("LoadServerTLS: %v", err)
	}
	if _, err := LoadClientTLS(caFile, "", ""); err != nil {
		t.Fatalf("LoadClientTLS: %v", err)
	}
	if _, err := LoadClientTLS(caFile, certFile, ""); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("LoadClientTLS with a certificate and no key: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestPKIBadInput(t *testing.T) {
	c, other := newCA(t, "ca"), newCA(t, "other")
	nodeCert, nodeKey := c.issue(t, Request{Name: "n1", Kind: KindNode})
	garbage := [][]byte{
		nil,
		{},
		[]byte("not pem at all"),
		[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		[]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		[]byte("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
		c.cert[:len(c.cert)/2],
		bytes.Repeat([]byte{0xff}, 1000),
	}
	node := Request{Name: "n9", Kind: KindNode, Validity: time.Hour}
	for i, g := range garbage {
		if _, _, err := Issue(rand.Reader, t0, g, c.key, node); err == nil {
			t.Errorf("garbage %d as the CA certificate: no error", i)
		}
		if _, _, err := Issue(rand.Reader, t0, c.cert, g, node); err == nil {
			t.Errorf("garbage %d as the CA key: no error", i)
		}
		if _, err := NodeTLS(g, nodeKey, c.cert); err == nil {
			t.Errorf("garbage %d as the node certificate: no error", i)
		}
		if _, err := NodeTLS(nodeCert, g, c.cert); err == nil {
			t.Errorf("garbage %d as the node key: no error", i)
		}
		if _, err := NodeTLS(nodeCert, nodeKey, g); err == nil {
			t.Errorf("garbage %d as the CA: no error", i)
		}
		if _, err := ServerTLS(g, nodeKey, nil); err == nil {
			t.Errorf("garbage %d as the server certificate: no error", i)
		}
		if _, err := ClientTLS(g, nil, nil); err == nil {
			t.Errorf("garbage %d as the client's CA: no error", i)
		}
		if _, err := CertPool(g); !errors.Is(err, ErrBadPEM) {
			t.Errorf("garbage %d as a pool: %v", i, err)
		}
		if _, err := ParsePrivateKey(g); !errors.Is(err, ErrBadPEM) {
			t.Errorf("garbage %d as a key: %v", i, err)
		}
	}
	// Well-formed but wrong.
	if _, _, err := Issue(rand.Reader, t0, c.cert, other.key, node); !errors.Is(err, ErrNotCA) {
		t.Errorf("CA with another CA's key: %v", err)
	}
	if _, _, err := Issue(rand.Reader, t0, nodeCert, nodeKey, node); !errors.Is(err, ErrNotCA) {
		t.Errorf("leaf as CA: %v", err)
	}
	if _, err := CertPool(nodeCert); !errors.Is(err, ErrNotCA) {
		t.Errorf("leaf as CA pool: %v", err)
	}
	if _, err := NodeTLS(nodeCert, other.key, c.cert); !errors.Is(err, ErrBadPEM) {
		t.Errorf("node certificate with another key: %v", err)
	}
	for name, req := range map[string]Request{
		"empty name":       {Kind: KindNode, Validity: time.Hour},
		"slash in name":    {Name: "a/b", Kind: KindNode, Validity: time.Hour},
		"long name":        {Name: string(bytes.Repeat([]byte("a"), MaxNameLen+1)), Kind: KindNode, Validity: time.Hour},
		"no validity":      {Name: "n1", Kind: KindNode},
		"outlives CA":      {Name: "n1", Kind: KindNode, Validity: 2 * 365 * 24 * time.Hour},
		"unknown kind":     {Name: "n1", Kind: 42, Validity: time.Hour},
		"zero kind":        {Name: "n1", Validity: time.Hour},
		"hosts for admin":  {Name: "a", Kind: KindAdmin, Hosts: []string{"127.0.0.1"}, Validity: time.Hour},
		"bad host":         {Name: "n1", Kind: KindNode, Hosts: []string{"exa mple.org"}, Validity: time.Hour},
		"empty host":       {Name: "n1", Kind: KindNode, Hosts: []string{""}, Validity: time.Hour},
		"host with scheme": {Name: "n1", Kind: KindNode, Hosts: []string{"https://x.org"}, Validity: time.Hour},
	} {
		if _, _, err := Issue(rand.Reader, t0, c.cert, c.key, req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := Issue(rand.Reader, t0.Add(2*365*24*time.Hour), c.cert, c.key, node); !errors.Is(err, ErrNotCA) {
		t.Errorf("issue from an expired CA: %v", err)
	}
	if _, _, err := NewCA(rand.Reader, t0, "", time.Hour); !errors.Is(err, ErrBadRequest) {
		t.Errorf("CA without a name: %v", err)
	}
	if _, _, err := NewCA(rand.Reader, t0, "ca", -time.Hour); !errors.Is(err, ErrBadRequest) {
		t.Errorf("CA with negative validity: %v", err)
	}
	if _, _, err := NewCA(failingReader{}, t0, "ca", time.Hour); err == nil {
		t.Error("NewCA with a failing reader: no error")
	}
	if _, _, err := Issue(failingReader{}, t0, c.cert, c.key, node); err == nil {
		t.Error("Issue with a failing reader: no error")
	}
	if _, _, err := Identity(nil); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("Identity(nil): %v", err)
	}
	if _, _, err := Identity(mustCert(t, c.cert)); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("Identity(CA): %v", err)
	}
	if _, err := VerifyNode(mustPool(t, c.cert), nil, t0); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyNode without certificates: %v", err)
	}
	if _, err := VerifyNode(nil, []*x509.Certificate{mustCert(t, nodeCert)}, t0); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyNode without a pool: %v", err)
	}
	if _, _, err := PeerIdentity(nil); !errors.Is(err, ErrUntrusted) {
		t.Errorf("PeerIdentity(nil): %v", err)
	}
}
