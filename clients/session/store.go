package session

// Store keeps the encrypted state blobs of a Session, one per operation: the
// seam between the session and the platform's storage. FileStore keeps them
// in files (the CLI and the terminal client); the web client keeps them in
// the browser's storage. A Store sees only ciphertext: blobs are sealed
// under a key derived from the identity before they reach it.
type Store interface {
	// Load returns op's blob, or an error wrapping ErrNoState if there is
	// none.
	Load(op string) ([]byte, error)
	// Save replaces op's blob atomically: after a crash, Load returns
	// either the old or the new blob.
	Save(op string, b []byte) error
	// Lock takes an exclusive lock on op's blob, across every Session (and,
	// for files, every process) sharing the store, and returns its release.
	Lock(op string) (unlock func(), err error)
	// List returns the operations that have a blob.
	List() ([]string, error)
	// Name names op's blob in error messages (a file path, a storage key).
	Name(op string) string
}

// lockOp takes op's lock in the session's store.
func (s *Session) lockOp(op string) (func(), error) { return s.store.Lock(op) }
