//go:build js || wasip1

package session

import "sync"

// Without advisory file locks (GOOS=js, wasip1) a FileStore locks within
// the process only: such a process is the store's only user.
var (
	fileLocksMu sync.Mutex
	fileLocks   = map[string]*sync.Mutex{}
)

func lockFile(path string) (func(), error) {
	fileLocksMu.Lock()
	m, ok := fileLocks[path]
	if !ok {
		m = new(sync.Mutex)
		fileLocks[path] = m
	}
	fileLocksMu.Unlock()
	m.Lock()
	return m.Unlock, nil
}
