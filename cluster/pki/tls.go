package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// VerifyNode checks that chain (a peer's certificates, leaf first, as in
// tls.ConnectionState.PeerCertificates) is a valid node certificate at now:
// the leaf is signed directly by a CA in roots, is within its validity
// period, carries ExtKeyUsage ServerAuth and ClientAuth, and names a node
// with its liaison://node/<id> URI SAN (and the same id as CommonName). It
// returns the node id. Intermediate certificates the peer sends are
// ignored: the cluster CA signs leaves only.
func VerifyNode(roots *x509.CertPool, chain []*x509.Certificate, now time.Time) (id string, err error) {
	if roots == nil {
		return "", fmt.Errorf("%w: no CA pool", ErrUntrusted)
	}
	if len(chain) == 0 || chain[0] == nil {
		return "", fmt.Errorf("%w: peer sent no certificate", ErrUntrusted)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrUntrusted, leaf.Subject.CommonName, err)
	}
	return nodeIdentity(leaf)
}

// nodeIdentity checks the node-specific parts of a (verified) leaf.
func nodeIdentity(leaf *x509.Certificate) (string, error) {
	kind, name, err := Identity(leaf)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrNotNode, leaf.Subject.CommonName, err)
	}
	if kind != KindNode {
		return "", fmt.Errorf("%w: %q is a %s certificate", ErrNotNode, name, kind)
	}
	if leaf.Subject.CommonName != name {
		return "", fmt.Errorf("%w: CommonName %q does not match node id %q", ErrNotNode, leaf.Subject.CommonName, name)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("%w: %q lacks ServerAuth and ClientAuth key usage", ErrNotNode, name)
	}
	return name, nil
}

// NodeTLS returns the tls.Config for node-to-node connections (Raft and
// forwarding): the same config is used with tls.Server on accept and with
// tls.Client on dial. certPEM and keyPEM are this node's node certificate
// and key, caPEM the cluster CA certificate.
//
// Both roles present the node certificate, require the peer's certificate
// (ClientAuth RequireAndVerifyClientCert) and accept it only if VerifyNode
// passes: it chains to the cluster CA and is a node certificate. TLS 1.3
// only.
//
// Host names are not verified: nodes dial each other by the Raft address
// in the configuration (an IP:port that may be a NAT or container address
// the certificate never named, and that changes without reissuing
// certificates), so the dialer sets InsecureSkipVerify, which in crypto/tls
// only switches off the built-in chain-and-host-name check of the server
// certificate, and instead VerifyConnection runs the full chain
// verification against the CA pool plus the node identity check, for the
// server certificate on dial and the client certificate on accept alike.
// What authenticates a peer is thus "holds the key of a node certificate
// of this CA", which is exactly the cluster's membership criterion; every
// node is equally trusted, so binding the certificate's node id to the
// Raft server id is not required for safety (and would need the mux to
// know the id it dials).
//
// Verification uses the returned config's Time field if set (tests), else
// the wall clock; set Time on the returned config itself, since a Clone's
// VerifyConnection still reads the original's Time. Session tickets are
// disabled so that every connection is verified with a full handshake.
func NodeTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: node TLS: %w: %w", ErrBadPEM, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("pki: node TLS: %w: %w", ErrBadPEM, err)
	}
	pair.Leaf = leaf
	pool, cas, err := caPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: node TLS: %w", err)
	}
	if _, err := nodeIdentity(leaf); err != nil {
		return nil, fmt.Errorf("pki: node TLS: own certificate: %w", err)
	}
	if !signedByOneOf(leaf, cas) {
		return nil, fmt.Errorf("pki: node TLS: own certificate: %w: %q was not issued by the given CA", ErrUntrusted, leaf.Subject.CommonName)
	}
	cfg := &tls.Config{
		Certificates:           []tls.Certificate{pair},
		RootCAs:                pool,
		ClientCAs:              pool,
		ClientAuth:             tls.RequireAndVerifyClientCert,
		MinVersion:             tls.VersionTLS13,
		InsecureSkipVerify:     true, // replaced by VerifyConnection below; see the doc comment
		SessionTicketsDisabled: true,
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if cfg.Time != nil {
			now = cfg.Time()
		}
		_, err := VerifyNode(pool, cs.PeerCertificates, now)
		return err
	}
	return cfg, nil
}

// ServerTLS returns the tls.Config for relayd's client-facing HTTPS
// listener (WebSocket, web client, admin API). certPEM and keyPEM are the
// node's certificate and key (any certificate with ServerAuth usage; a
// node certificate whose Hosts name the addresses clients use). If caPEM
// is given, clients may present a certificate from that CA (ClientAuth
// VerifyClientCertIfGiven) and PeerIdentity tells who they are, for
// example to let admin certificates change the cluster; clients without a
// certificate still connect and authenticate with their identity keys.
// TLS 1.2 or later, for browsers.
func ServerTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: server TLS: %w: %w", ErrBadPEM, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("pki: server TLS: %w: %w", ErrBadPEM, err)
	}
	pair.Leaf = leaf
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil, fmt.Errorf("pki: server TLS: %w: %q is not a server certificate", ErrBadRequest, leaf.Subject.CommonName)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	}
	if len(caPEM) > 0 {
		pool, err := CertPool(caPEM)
		if err != nil {
			return nil, fmt.Errorf("pki: server TLS: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// ClientTLS returns the tls.Config for a client (the CLI, the Go client
// library, an admin tool) connecting to relayd's HTTPS listener: the
// server certificate must chain to the CA in caPEM and match the host name
// dialed (the usual check; crypto/tls takes the name from the address).
// certPEM and keyPEM, if given, are presented as the client's certificate
// (for example an admin certificate for the admin API). TLS 1.3 only.
func ClientTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	pool, err := CertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: client TLS: %w", err)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("pki: client TLS: %w: %w", ErrBadPEM, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// PeerIdentity returns who the peer of a server-side connection is, from
// the certificate crypto/tls verified against the config's ClientCAs (see
// ServerTLS). It fails if the peer presented no verified certificate.
// Use it with http.Request.TLS.
func PeerIdentity(cs *tls.ConnectionState) (Kind, string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return 0, "", fmt.Errorf("%w: no verified client certificate", ErrUntrusted)
	}
	return Identity(cs.VerifiedChains[0][0])
}

func caPool(caPEM []byte) (*x509.CertPool, []*x509.Certificate, error) {
	pool, err := CertPool(caPEM)
	if err != nil {
		return nil, nil, err
	}
	cas, err := ParseCertificates(caPEM)
	if err != nil {
		return nil, nil, err
	}
	return pool, cas, nil
}

func signedByOneOf(leaf *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}
