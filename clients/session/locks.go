package session

import "sync"

// Locks is a set of exclusive in-process locks by name: what a Store
// whose users are all in one process (a browser page, a test) locks with.
// The zero value is ready to use.
type Locks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock takes the lock named key, waiting for it, and returns its release.
// It never fails; the error is there to match Store.Lock.
func (l *Locks) Lock(key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*sync.Mutex)
	}
	m, ok := l.m[key]
	if !ok {
		m = new(sync.Mutex)
		l.m[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock, nil
}
