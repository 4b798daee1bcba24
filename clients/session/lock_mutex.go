//go:build js || wasip1

package session

// Without advisory file locks (GOOS=js, wasip1) a FileStore locks within
// the process only: such a process is the store's only user.
var fileLocks Locks

func lockFile(path string) (func(), error) { return fileLocks.Lock(path) }
