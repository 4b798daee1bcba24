package session

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"liaison/clients"
)

// PresenceSource is what TaskStatus and Presence need of the relay
// connection beyond Relay; *clients.Client implements it.
type PresenceSource interface {
	Presence(ctx context.Context, op string) (*clients.Presence, error)
}

// ErrNoPresence is returned by Presence when the relay connection cannot
// report presence.
var ErrNoPresence = errors.New("session: the relay connection does not report presence")

// Presence returns op's presence and delivery table from the relay.
func (s *Session) Presence(ctx context.Context, op string) (*clients.Presence, error) {
	ps, ok := s.c.(PresenceSource)
	if s.c == nil || !ok {
		return nil, ErrNoPresence
	}
	return ps.Presence(ctx, op)
}

// TaskStatus syncs op, asks the relay for its delivery table (if the relay
// connection reports presence; a failure there leaves delivery unknown and
// is passed to Options.Warn) and returns op's tasks.
func (s *Session) TaskStatus(ctx context.Context, op string) ([]TaskStatus, error) {
	if _, err := s.Sync(ctx, op); err != nil {
		return nil, err
	}
	var delivery Delivery
	if ps, ok := s.c.(PresenceSource); ok {
		p, err := ps.Presence(ctx, op)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			s.warn(op, fmt.Sprintf("delivery table unavailable: %v", err))
		} else {
			delivery = p.Delivered()
		}
	}
	return s.Tasks(op, delivery)
}

// OpEntry is a history entry of one of several operations.
type OpEntry struct {
	Op string
	Entry
}

// SyncAll syncs several operations concurrently over the session's one
// relay connection and returns their new entries per operation. Every
// operation is attempted; the errors are joined.
func (s *Session) SyncAll(ctx context.Context, ops []string) (map[string][]Entry, error) {
	var mu sync.Mutex
	out := make(map[string][]Entry, len(ops))
	var errs []error
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es, err := s.Sync(ctx, op)
			mu.Lock()
			defer mu.Unlock()
			out[op] = es
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", op, err))
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// FollowAll follows several operations at once over the session's one
// relay connection (one subscription per operation), calling fn for each
// new entry (calls are serialised; entries of one operation come in log
// order). It returns when ctx ends (nil) or when following any operation
// fails (the others are stopped then).
func (s *Session) FollowAll(ctx context.Context, ops []string, fn func(OpEntry)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	errc := make(chan error, len(ops))
	for _, op := range ops {
		go func() {
			err := s.Follow(ctx, op, func(e Entry) {
				mu.Lock()
				defer mu.Unlock()
				fn(OpEntry{Op: op, Entry: e})
			})
			if err != nil {
				err = fmt.Errorf("%s: %w", op, err)
				cancel()
			}
			errc <- err
		}()
	}
	var first error
	for range ops {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
