package session

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileStore is a Store in a directory: op's blob is the file
// DIR/ops/OP.state (mode 0600), replaced atomically, locked with an advisory
// file lock (DIR/ops/OP.lock) where the platform has one.
type FileStore struct {
	// Dir is the session's home directory.
	Dir string
}

// Name returns the path of op's state file.
func (f FileStore) Name(op string) string {
	return filepath.Join(f.Dir, "ops", op+stateSuffix)
}

// Load reads op's state file, bounded by maxStateFile.
func (f FileStore) Load(op string) ([]byte, error) {
	fh, err := os.Open(f.Name(op))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxStateFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("session: %s: larger than %d bytes", f.Name(op), maxStateFile)
	}
	return b, nil
}

// Save replaces op's state file atomically (WriteFileAtomic).
func (f FileStore) Save(op string, b []byte) error { return WriteFileAtomic(f.Name(op), b) }

// Lock takes an exclusive lock on op's state, so that two processes (say
// `read --follow` and `send`) never overwrite each other's state — which
// could otherwise re-use a sending key.
func (f FileStore) Lock(op string) (func(), error) {
	dir := filepath.Join(f.Dir, "ops")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return lockFile(filepath.Join(dir, op+".lock"))
}

// List lists the operations with a state file.
func (f FileStore) List() ([]string, error) {
	des, err := os.ReadDir(filepath.Join(f.Dir, "ops"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ops []string
	for _, de := range des {
		n := de.Name()
		if de.Type().IsRegular() && strings.HasSuffix(n, stateSuffix) && !strings.HasPrefix(n, ".") {
			ops = append(ops, strings.TrimSuffix(n, stateSuffix))
		}
	}
	return ops, nil
}

// WriteFileAtomic writes b to path through a temporary file in the same
// directory (mode 0600), fsyncs it, renames it over path and fsyncs the
// directory, so path holds either the old or the new content after a crash.
func WriteFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
