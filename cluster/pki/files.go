package pki

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File permissions WriteFiles uses.
const (
	CertFileMode os.FileMode = 0o644
	KeyFileMode  os.FileMode = 0o600
	DirMode      os.FileMode = 0o700
)

// WriteFiles writes certPEM to dir/name.crt (mode 0644) and keyPEM to
// dir/name.key (mode 0600), creating dir (0700) if needed. It never
// overwrites: if either file exists it fails with an error wrapping
// fs.ErrExist and writes nothing, so that running `liaison admin ca` twice
// cannot destroy a CA key. A nil keyPEM writes the certificate only.
func WriteFiles(dir, name string, certPEM, keyPEM []byte) (certFile, keyFile string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", "", fmt.Errorf("pki: write files: %w: file name %q", ErrBadRequest, name)
	}
	if len(certPEM) == 0 {
		return "", "", fmt.Errorf("pki: write files: %w: no certificate", ErrBadRequest)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return "", "", fmt.Errorf("pki: write files: %w", err)
	}
	certFile = filepath.Join(dir, name+".crt")
	if keyPEM != nil {
		keyFile = filepath.Join(dir, name+".key")
	}
	for _, f := range []string{certFile, keyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Lstat(f); err == nil {
			return "", "", fmt.Errorf("pki: write files: %s: %w", f, os.ErrExist)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("pki: write files: %w", err)
		}
	}
	if keyFile != "" {
		if err := writeNew(keyFile, keyPEM, KeyFileMode); err != nil {
			return "", "", fmt.Errorf("pki: write files: %w", err)
		}
	}
	if err := writeNew(certFile, certPEM, CertFileMode); err != nil {
		if keyFile != "" {
			_ = os.Remove(keyFile)
		}
		return "", "", fmt.Errorf("pki: write files: %w", err)
	}
	return certFile, keyFile, nil
}

// writeNew creates path exclusively with perm, writes b and syncs it; on
// failure it removes what it created.
func writeNew(path string, b []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadFiles reads the named PEM files; an empty name yields nil.
func ReadFiles(names ...string) ([][]byte, error) {
	out := make([][]byte, len(names))
	for i, n := range names {
		if n == "" {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

// LoadNodeTLS reads a node's certificate, key and the cluster CA from PEM
// files and returns NodeTLS of them.
func LoadNodeTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, fmt.Errorf("pki: node TLS: %w: certificate, key and CA files are all required", ErrBadRequest)
	}
	b, err := ReadFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return NodeTLS(b[0], b[1], b[2])
}

// LoadServerTLS reads a server certificate, key and (optional, "" for
// none) client CA from PEM files and returns ServerTLS of them.
func LoadServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("pki: server TLS: %w: certificate and key files are required", ErrBadRequest)
	}
	b, err := ReadFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return ServerTLS(b[0], b[1], b[2])
}

// LoadClientTLS reads the CA and an optional ("" for none) client
// certificate and key from PEM files and returns ClientTLS of them.
func LoadClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, fmt.Errorf("pki: client TLS: %w: CA file is required", ErrBadRequest)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("pki: client TLS: %w: give both certificate and key files or neither", ErrBadRequest)
	}
	b, err := ReadFiles(caFile, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return ClientTLS(b[0], b[1], b[2])
}
