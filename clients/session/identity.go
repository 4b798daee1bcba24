package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"liaison/crypto"
)

// DefaultHome is $HOME/.liaison.
func DefaultHome() (string, error) {
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".liaison"), nil
}

// ErrIdentityExists is returned by CreateIdentityFile for an existing path.
var ErrIdentityExists = errors.New("session: identity file already exists")

// CreateIdentityFile generates an identity named name and writes it,
// encrypted under passphrase, to path (atomically, mode 0600). It refuses
// to overwrite an existing file.
func CreateIdentityFile(path, name string, passphrase []byte, params crypto.KDFParams) (*crypto.Identity, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrIdentityExists, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	id, err := crypto.NewIdentity(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	b, err := crypto.EncryptIdentity(rand.Reader, id, passphrase, params)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(path, b); err != nil {
		return nil, err
	}
	return id, nil
}

// LoadIdentityFile reads and decrypts the identity file at path.
func LoadIdentityFile(path string, passphrase []byte) (*crypto.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, crypto.MaxIdentityFileSize+1)
	n, _ := io.ReadFull(f, b)
	if n > crypto.MaxIdentityFileSize {
		return nil, fmt.Errorf("session: %s is not an identity file", path)
	}
	id, err := crypto.DecryptIdentity(b[:n], passphrase)
	if errors.Is(err, crypto.ErrDecrypt) {
		return nil, fmt.Errorf("session: %s: wrong passphrase (or damaged file)", path)
	}
	return id, err
}

// ResolveMember finds a member of r by fingerprint prefix (digits, spaces
// ignored), signing-key hex prefix, or exact display name; it must match
// exactly one member.
func ResolveMember(r *crypto.Roster, q string) (crypto.Member, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return crypto.Member{}, errors.New("session: empty member name")
	}
	digits := strings.Map(func(c rune) rune {
		if unicode.IsSpace(c) {
			return -1
		}
		return c
	}, q)
	var found []crypto.Member
	for _, m := range r.Members {
		fp := strings.ReplaceAll(crypto.Fingerprint(m.Key), " ", "")
		switch {
		case m.Name == q,
			len(digits) >= 5 && strings.HasPrefix(fp, digits),
			len(q) >= 8 && strings.HasPrefix(hex.EncodeToString(m.Key[:]), strings.ToLower(q)):
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return crypto.Member{}, fmt.Errorf("session: no member matches %q", q)
	case 1:
		return found[0], nil
	}
	return crypto.Member{}, fmt.Errorf("session: %d members match %q; use a longer fingerprint prefix", len(found), q)
}
