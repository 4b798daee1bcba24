package session

import "fmt"

// An operation's outbox is a blob of its own in the session's Store, under
// the key ".OP.outbox", which no operation can have (names never start with
// "."), so listings of operations skip it; a FileStore keeps it beside the
// state as HOME/ops/.OP.outbox.state, locked with HOME/ops/.OP.outbox.lock.

func outboxKey(op string) string { return "." + op + ".outbox" }

func (s *Session) outboxName(op string) string { return s.store.Name(outboxKey(op)) }

// loadOutbox reads op's outbox blob; an error wrapping ErrNoState if there
// is none.
func (s *Session) loadOutbox(op string) ([]byte, error) {
	b, err := s.store.Load(outboxKey(op))
	if err == nil && len(b) > maxOutboxFile {
		return nil, fmt.Errorf("session: %s: larger than %d bytes", s.outboxName(op), maxOutboxFile)
	}
	return b, err
}

// saveOutbox replaces op's outbox blob atomically.
func (s *Session) saveOutbox(op string, b []byte) error {
	return s.store.Save(outboxKey(op), b)
}

// lockOutbox takes op's outbox lock and returns its release.
func (s *Session) lockOutbox(op string) (func(), error) {
	return s.store.Lock(outboxKey(op))
}
