package session

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Where an operation's outbox lives: beside its state, as the hidden file
// HOME/ops/.OP.outbox.state, locked with HOME/ops/.OP.outbox.lock. The name
// is what a state store would give the key ".OP.outbox", which no
// operation can have (names never start with "."), so listings of
// operations skip it.

func outboxKey(op string) string { return "." + op + ".outbox" }

func (s *Session) outboxName(op string) string {
	return filepath.Join(s.home, "ops", outboxKey(op)+stateSuffix)
}

// loadOutbox reads op's outbox blob; ErrNoState if there is none.
func (s *Session) loadOutbox(op string) ([]byte, error) {
	f, err := os.Open(s.outboxName(op))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOutboxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxOutboxFile {
		return nil, fmt.Errorf("session: %s: larger than %d bytes", s.outboxName(op), maxOutboxFile)
	}
	return b, nil
}

// saveOutbox replaces op's outbox blob atomically.
func (s *Session) saveOutbox(op string, b []byte) error {
	return WriteFileAtomic(s.outboxName(op), b)
}

// lockOutbox takes op's outbox lock (across processes) and returns its
// release.
func (s *Session) lockOutbox(op string) (func(), error) {
	dir := filepath.Join(s.home, "ops")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, outboxKey(op)+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("session: lock outbox of %s: %w", op, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
