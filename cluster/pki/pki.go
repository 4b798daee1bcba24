package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Scheme is the URI scheme of the identity SAN in every leaf certificate.
const Scheme = "liaison"

// ClockSkew is how far before `now` a new certificate's NotBefore is set,
// so that a node whose clock runs a little behind the issuer's accepts it.
const ClockSkew = 5 * time.Minute

// MaxNameLen bounds a certificate holder's name (a node id is at most 128
// bytes in the cluster package).
const MaxNameLen = 128

// Kind is the role a leaf certificate is issued for.
type Kind int

// The kinds of leaf certificate.
const (
	// KindNode is a relay node: it serves and dials cluster connections
	// (ExtKeyUsage ServerAuth and ClientAuth) and may serve clients.
	KindNode Kind = iota + 1
	// KindClient is a client device or tool (ExtKeyUsage ClientAuth).
	KindClient
	// KindAdmin is an administrator (ExtKeyUsage ClientAuth).
	KindAdmin
)

// String returns the kind's name as used in the identity URI ("node",
// "client", "admin").
func (k Kind) String() string {
	switch k {
	case KindNode:
		return "node"
	case KindClient:
		return "client"
	case KindAdmin:
		return "admin"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func kindFromString(s string) (Kind, bool) {
	for _, k := range []Kind{KindNode, KindClient, KindAdmin} {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// Request describes a leaf certificate to issue.
type Request struct {
	// Name is the holder: the node id for KindNode, the person's or tool's
	// name otherwise. 1..MaxNameLen bytes of ASCII letters, digits and
	// "._-@".
	Name string
	// Kind is the role the certificate is for.
	Kind Kind
	// Hosts are the IP addresses and DNS names the holder serves under
	// (subject alternative names). Only for KindNode.
	Hosts []string
	// Validity is how long the certificate is valid from now; it must not
	// outlast the CA.
	Validity time.Duration
}

// Errors returned (wrapped) by this package.
var (
	// ErrBadPEM means input that should hold a PEM certificate or key
	// does not.
	ErrBadPEM = errors.New("pki: malformed PEM")
	// ErrBadRequest means a CA or certificate request is invalid.
	ErrBadRequest = errors.New("pki: invalid request")
	// ErrNotCA means the certificate given as the CA is not a usable CA
	// or does not match its key.
	ErrNotCA = errors.New("pki: not a usable CA")
	// ErrUntrusted means a peer's certificate does not chain to the CA,
	// is expired or not yet valid, or is missing.
	ErrUntrusted = errors.New("pki: certificate not trusted")
	// ErrNotNode means a peer's certificate is from the CA but does not
	// identify a cluster node.
	ErrNotNode = errors.New("pki: certificate is not a node certificate")
	// ErrNoIdentity means a certificate carries no (or more than one)
	// liaison:// identity URI.
	ErrNoIdentity = errors.New("pki: certificate has no liaison identity")
)

// NewCA creates a self-signed cluster CA named name, valid from now for
// validity, and returns its certificate and private key as PEM. The CA may
// sign leaf certificates only (MaxPathLen 0).
func NewCA(rand io.Reader, now time.Time, name string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if err := checkName(name); err != nil {
		return nil, nil, fmt.Errorf("pki: new CA: %w", err)
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("pki: new CA: %w: validity %v", ErrBadRequest, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: new CA: generate key: %w", err)
	}
	serial, err := newSerial(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: new CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Liaison"}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: new CA: create certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: new CA: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Issue issues a leaf certificate for req, signed by the CA whose
// certificate and key are given as PEM, valid from now for req.Validity,
// and returns the certificate and its new private key as PEM.
//
// Node certificates carry ExtKeyUsage ServerAuth and ClientAuth, the node
// id as CommonName and the URI SAN liaison://node/<id>, plus req.Hosts as
// IP and DNS SANs. Admin and client certificates carry ClientAuth only and
// the URI SAN liaison://admin/<name> or liaison://client/<name>.
func Issue(rand io.Reader, now time.Time, caCertPEM, caKeyPEM []byte, req Request) (certPEM, keyPEM []byte, err error) {
	if err := checkName(req.Name); err != nil {
		return nil, nil, fmt.Errorf("pki: issue: %w", err)
	}
	if req.Validity <= 0 {
		return nil, nil, fmt.Errorf("pki: issue %s: %w: validity %v", req.Name, ErrBadRequest, req.Validity)
	}
	ca, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %s: %w", req.Name, err)
	}
	if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("pki: issue %s: %w: CA is valid from %s to %s", req.Name, ErrNotCA,
			ca.NotBefore.UTC().Format(time.RFC3339), ca.NotAfter.UTC().Format(time.RFC3339))
	}
	if notAfter := now.Add(req.Validity); notAfter.After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("pki: issue %s: %w: certificate would outlive its CA (CA expires %s)", req.Name,
			ErrBadRequest, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := newSerial(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %s: %w", req.Name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Name, Organization: []string{"Liaison"}, OrganizationalUnit: []string{req.Kind.String()}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(req.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{IdentityURI(req.Kind, req.Name)},
	}
	if tmpl.NotBefore.Before(ca.NotBefore) {
		tmpl.NotBefore = ca.NotBefore
	}
	switch req.Kind {
	case KindNode:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		for _, h := range req.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				continue
			}
			if err := checkHost(h); err != nil {
				return nil, nil, fmt.Errorf("pki: issue %s: %w", req.Name, err)
			}
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	case KindClient, KindAdmin:
		if len(req.Hosts) > 0 {
			return nil, nil, fmt.Errorf("pki: issue %s: %w: hosts are only for node certificates", req.Name, ErrBadRequest)
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, nil, fmt.Errorf("pki: issue %s: %w: unknown kind %v", req.Name, ErrBadRequest, req.Kind)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %s: generate key: %w", req.Name, err)
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %s: create certificate: %w", req.Name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %s: %w", req.Name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// IdentityURI returns the identity URI SAN for a holder:
// liaison://<kind>/<name>.
func IdentityURI(kind Kind, name string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: kind.String(), Path: "/" + name}
}

// Identity returns the kind and name a certificate was issued for, read
// from its liaison:// URI SAN. It does not verify the certificate; use it
// on verified chains only.
func Identity(cert *x509.Certificate) (Kind, string, error) {
	if cert == nil {
		return 0, "", fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	var found *url.URL
	for _, u := range cert.URIs {
		if u.Scheme != Scheme {
			continue
		}
		if found != nil {
			return 0, "", fmt.Errorf("%w: more than one %s:// URI", ErrNoIdentity, Scheme)
		}
		found = u
	}
	if found == nil {
		return 0, "", fmt.Errorf("%w: no %s:// URI", ErrNoIdentity, Scheme)
	}
	kind, ok := kindFromString(found.Host)
	name, hasSlash := strings.CutPrefix(found.Path, "/")
	if !ok || !hasSlash || found.User != nil || found.RawQuery != "" || found.Fragment != "" || checkName(name) != nil {
		return 0, "", fmt.Errorf("%w: malformed URI %q", ErrNoIdentity, found.String())
	}
	return kind, name, nil
}

// ParseCertificates parses every CERTIFICATE block in pemBytes (other
// block types are skipped). It fails if there is none or one is malformed.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %w", ErrBadPEM, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadPEM)
	}
	return certs, nil
}

// ParsePrivateKey parses the first private key block in pemBytes: PKCS #8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE
// KEY").
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w: no private key block", ErrBadPEM)
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: private key: %w", ErrBadPEM, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrBadPEM, k)
		}
		return s, nil
	}
}

// CertPool parses caPEM (one or more CA certificates) into a pool. Every
// certificate in it must be a CA.
func CertPool(caPEM []byte) (*x509.CertPool, error) {
	certs, err := ParseCertificates(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("pki: CA: %w: %q is not a CA certificate", ErrNotCA, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA: %w", err)
	}
	ca := certs[0]
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("%w: %q is not a CA certificate", ErrNotCA, ca.Subject.CommonName)
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("%w: the key does not belong to CA %q", ErrNotCA, ca.Subject.CommonName)
	}
	return ca, key, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial returns a random positive 127-bit serial number.
func newSerial(rand io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, always 16 bytes
	return new(big.Int).SetBytes(b[:]), nil
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name of %d bytes (want 1..%d)", ErrBadRequest, len(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: name %q", ErrBadRequest, name)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
		default:
			return fmt.Errorf("%w: name %q: only ASCII letters, digits and ._-@ are allowed", ErrBadRequest, name)
		}
	}
	return nil
}

func checkHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: host name %q", ErrBadRequest, h)
	}
	for _, label := range strings.Split(strings.TrimPrefix(h, "*."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: host name %q", ErrBadRequest, h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%w: host name %q is neither an IP address nor a DNS name", ErrBadRequest, h)
			}
		}
	}
	return nil
}
