// Package session is the client side of Liaison's end-to-end encryption: it
// owns one person's local state for their operations (the verified roster
// and message keys as a crypto.Group, the processed position in each
// operation's log, and the decrypted history), encrypted at rest under a key
// derived from the identity, and it turns the relay's single ordered log of
// commits and messages into that history.
//
// Every operation on an operation's state runs under an exclusive file lock
// and ends with an atomic save, so concurrent processes never lose each
// other's updates, and a sending key is saved as used before the envelope
// that used it leaves the machine.
package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"liaison/clients"
	"liaison/crypto"
	"liaison/relay/wire"
)

// DefaultKeyUpdateAfter is how old a member's last key update may get
// before Sync commits a new one.
const DefaultKeyUpdateAfter = 24 * time.Hour

// maxCommitAttempts bounds rebuilds of a commit refused with stale_head.
const maxCommitAttempts = 5

// Relay is what a Session needs of a relay connection; *clients.Client
// implements it.
type Relay interface {
	Publish(ctx context.Context, op string, envelope []byte, opts ...clients.PublishOption) (clients.PublishResult, error)
	Subscribe(ctx context.Context, op string, from uint64, opts ...clients.SubscribeOption) (*clients.Subscription, error)
}

// Options configures a Session. The zero value is usable.
type Options struct {
	// Rand is the randomness for commits and key updates. Default
	// crypto/rand.Reader.
	Rand io.Reader
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// KeyUpdateAfter: Sync commits a key update for this member when its
	// last one (or its joining) is older. 0 means DefaultKeyUpdateAfter; a
	// negative value turns timed key updates off.
	KeyUpdateAfter time.Duration
	// Warn receives warnings that belong to no log entry (a queued message
	// the relay refused, a timed key update that failed). Nil drops them.
	Warn func(op, msg string)
	// Store keeps the encrypted operation states. Nil means
	// FileStore{Dir: home}.
	Store Store
}

// Session is one identity's view of its operations. Methods that talk to
// the relay need a non-nil Relay; the others read local state only. It is
// safe for concurrent use (operations on the same op are serialised by the
// op's file lock).
type Session struct {
	store Store
	id    *crypto.Identity
	self  [32]byte
	key   [32]byte
	c     Relay
	opts  Options
}

// New opens the session of id whose state lives under home (operations in
// home/ops), or in opts.Store if set. relay may be nil for local-only use.
func New(home string, id *crypto.Identity, relay Relay, opts Options) *Session {
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyUpdateAfter == 0 {
		opts.KeyUpdateAfter = DefaultKeyUpdateAfter
	}
	if opts.Store == nil {
		opts.Store = FileStore{Dir: home}
	}
	return &Session{store: opts.Store, id: id, self: id.PublicKey(), key: id.LocalStateKey(statePurpose), c: relay, opts: opts}
}

// Identity returns the session's identity.
func (s *Session) Identity() *crypto.Identity { return s.id }

func (s *Session) warn(op, msg string) {
	if s.opts.Warn != nil {
		s.opts.Warn(op, msg)
	}
}

func (s *Session) nowMS() int64 { return s.opts.Now().UnixMilli() }

// ErrNoRelay is returned by methods that need the relay on a Session made
// without one.
var ErrNoRelay = errors.New("session: no relay connection")

// ErrNotMember is returned when this identity is not a member of the
// operation (not yet added, or removed).
var ErrNotMember = errors.New("session: not a member of this operation")

// opCtx is one operation's state loaded under its lock.
type opCtx struct {
	st     *opState
	g      *crypto.Group  // nil until joined
	roster *crypto.Roster // before joining: the roster from PreJoin
	fresh  []Entry        // entries added in this locked section
}

// load reads op's state (or starts an empty one) and rebuilds its Group.
func (s *Session) load(op string) (*opCtx, error) {
	st, err := s.readState(op)
	if errors.Is(err, ErrNoState) {
		st, err = &opState{V: 1, Op: op, Self: s.self[:]}, nil
	}
	if err != nil {
		return nil, err
	}
	oc := &opCtx{st: st}
	if len(st.Group) > 0 {
		if oc.g, err = crypto.UnmarshalGroup(s.id, st.Group); err != nil {
			return nil, fmt.Errorf("session: %s: group state: %w", op, err)
		}
		return oc, nil
	}
	for i, b := range st.PreJoin {
		c, err := crypto.DecodeCommit(b)
		if err == nil {
			if oc.roster == nil {
				oc.roster, err = crypto.VerifyGenesis(c)
			} else {
				oc.roster, err = oc.roster.Apply(c)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("session: %s: saved commit %d: %w", op, i, err)
		}
	}
	return oc, nil
}

// save writes oc's state (the Group included) atomically.
func (s *Session) save(oc *opCtx) error {
	if oc.g != nil {
		b, err := oc.g.MarshalBinary()
		if err != nil {
			return err
		}
		oc.st.Group = b
	}
	return s.writeState(oc.st)
}

// withOp runs f on op's state under its lock and saves the state afterwards,
// whatever f returned (processing is consistent at every entry).
func (s *Session) withOp(op string, f func(oc *opCtx) error) ([]Entry, error) {
	return s.lockedOp(op, true, f)
}

// readOp runs f on op's saved state under its lock, without saving; it
// returns ErrNoState if there is none.
func (s *Session) readOp(op string, f func(oc *opCtx) error) error {
	if _, err := s.readState(op); err != nil {
		return err
	}
	_, err := s.lockedOp(op, false, f)
	return err
}

func (s *Session) lockedOp(op string, write bool, f func(oc *opCtx) error) ([]Entry, error) {
	if !wire.ValidOp(op) {
		return nil, fmt.Errorf("%w: %q", clients.ErrInvalidOp, op)
	}
	unlock, err := s.lockOp(op)
	if err != nil {
		return nil, err
	}
	defer unlock()
	oc, err := s.load(op)
	if err != nil {
		return nil, err
	}
	defer func() {
		if oc.g != nil {
			oc.g.Destroy()
		}
	}()
	ferr := f(oc)
	if !write {
		return oc.fresh, ferr
	}
	if err := s.save(oc); err != nil {
		return oc.fresh, errors.Join(ferr, err)
	}
	return oc.fresh, ferr
}

// Sync brings op's local state up to the relay's current head: it
// processes every new entry in order (commits change the epoch, messages
// are opened under theirs), seals the messages queued with Queue and
// publishes them and own messages whose publish had an unknown outcome, commits a timed key update when one is due, and returns
// the entries added to the history.
func (s *Session) Sync(ctx context.Context, op string) ([]Entry, error) {
	return s.withOp(op, func(oc *opCtx) error {
		return s.syncLocked(ctx, oc)
	})
}

func (s *Session) syncLocked(ctx context.Context, oc *opCtx) error {
	if err := s.catchUp(ctx, oc); err != nil {
		return err
	}
	if err := s.drainOutbox(oc); err != nil {
		return err
	}
	if err := s.flushPending(ctx, oc); err != nil {
		return err
	}
	return s.maybeKeyUpdate(ctx, oc)
}

// catchUp processes op's entries after the last processed one up to the
// head the relay reports.
func (s *Session) catchUp(ctx context.Context, oc *opCtx) error {
	if s.c == nil {
		return ErrNoRelay
	}
	st := oc.st
	opts := []clients.SubscribeOption{clients.WithRetained()}
	if st.Seq > 0 {
		opts = append(opts, clients.WithPrevChain(st.relayChain()))
	}
	sub, err := s.c.Subscribe(ctx, st.Op, st.Seq+1, opts...)
	if err != nil {
		return err
	}
	defer sub.Close()
	head := sub.Head()
	if sub.Behind() {
		s.warn(st.Op, "the relay node is behind the leader: entries committed elsewhere may be missing from this read; try again or use another node")
	}
	for st.Seq < head || st.gapOpen() {
		select {
		case m, ok := <-sub.Messages():
			if !ok {
				if err := sub.Err(); err != nil {
					return err
				}
				return errors.New("session: subscription ended")
			}
			if err := s.apply(oc, m); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Follow processes op's new entries as they commit, calling fn with the
// entries each one adds to the history, until ctx ends (it then returns
// nil) or the subscription fails. Call Sync first; Follow starts after the
// last processed entry.
func (s *Session) Follow(ctx context.Context, op string, fn func(Entry)) error {
	return s.follow(ctx, op, 0, fn)
}

// FollowFrom is Follow for a reader that has shown op's history up to
// sequence from-1: it first calls fn with the local history from sequence
// from on (entries processed since, by this process or another), read under
// the same lock that fixes where following starts, so fn sees every entry
// from from on once, in order, with none missed in between.
func (s *Session) FollowFrom(ctx context.Context, op string, from uint64, fn func(Entry)) error {
	return s.follow(ctx, op, max(from, 1), fn)
}

// follow is Follow, first calling fn with the history from sequence from on
// unless from is 0.
func (s *Session) follow(ctx context.Context, op string, from uint64, fn func(Entry)) error {
	if s.c == nil {
		return ErrNoRelay
	}
	var next uint64
	var chain [32]byte
	var past []Entry
	if _, err := s.withOp(op, func(oc *opCtx) error {
		next, chain = oc.st.Seq+1, oc.st.relayChain()
		if from > 0 {
			past = entriesFrom(oc.st.Entries, from)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, e := range past {
		fn(e)
	}
	opts := []clients.SubscribeOption{clients.WithRetained()}
	if next > 1 {
		opts = append(opts, clients.WithPrevChain(chain))
	}
	sub, err := s.c.Subscribe(ctx, op, next, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer sub.Close()
	for {
		var batch []clients.Message
		select {
		case m, ok := <-sub.Messages():
			if !ok {
				if err := sub.Err(); err != nil {
					return err
				}
				return errors.New("session: subscription ended")
			}
			batch = append(batch, m)
		drain:
			for len(batch) < 256 {
				select {
				case m, ok := <-sub.Messages():
					if !ok {
						break drain
					}
					batch = append(batch, m)
				default:
					break drain
				}
			}
		case <-ctx.Done():
			return nil
		}
		entries, err := s.withOp(op, func(oc *opCtx) error {
			for _, m := range batch {
				switch {
				case m.Gap != nil || m.Retained:
					if err := s.apply(oc, m); err != nil {
						return err
					}
				case m.Seq <= oc.st.Seq:
					// Processed meanwhile by another process: show it from history.
					for _, e := range oc.st.Entries {
						if e.Seq == m.Seq {
							oc.fresh = append(oc.fresh, e)
						}
					}
				case m.Seq == oc.st.Seq+1:
					if err := s.apply(oc, m); err != nil {
						return err
					}
				default:
					return fmt.Errorf("session: %s: local state is at %d but the log delivered %d", op, oc.st.Seq, m.Seq)
				}
			}
			return nil
		})
		for _, e := range entries {
			fn(e)
		}
		if err != nil {
			return err
		}
	}
}

// History returns op's local history from sequence from on.
func (s *Session) History(op string, from uint64) ([]Entry, error) {
	var out []Entry
	err := s.readOp(op, func(oc *opCtx) error {
		out = entriesFrom(oc.st.Entries, from)
		return nil
	})
	return out, err
}

// entriesFrom returns a copy of the entries from sequence from on.
func entriesFrom(entries []Entry, from uint64) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Seq >= from {
			out = append(out, e)
		}
	}
	return out
}

// OpInfo describes one operation with local state.
type OpInfo struct {
	Op        string
	Seq       uint64 // last processed sequence
	Epoch     uint64
	Member    bool
	Role      crypto.Role // 0 unless Member
	Members   int
	Anomalies int
}

// Ops lists the operations with local state under the session's home.
func (s *Session) Ops() ([]OpInfo, error) {
	names, err := s.store.List()
	if err != nil {
		return nil, err
	}
	var out []OpInfo
	for _, op := range names {
		if !wire.ValidOp(op) {
			continue
		}
		info, err := s.Info(op)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Info describes op from local state.
func (s *Session) Info(op string) (OpInfo, error) {
	info := OpInfo{Op: op}
	err := s.readOp(op, func(oc *opCtx) error {
		info.Seq, info.Anomalies = oc.st.Seq, oc.st.Anomalies
		r := oc.currentRoster()
		if r == nil {
			return nil
		}
		info.Epoch, info.Members = r.Epoch, len(r.Members)
		if m, ok := r.Member(s.self); ok && oc.g != nil && oc.g.IsMember() {
			info.Member, info.Role = true, m.Role
		}
		return nil
	})
	return info, err
}

func (oc *opCtx) currentRoster() *crypto.Roster {
	if oc.g != nil {
		return oc.g.Roster()
	}
	return oc.roster
}

// Members returns op's current verified roster from local state (call Sync
// first for the relay's latest).
func (s *Session) Members(op string) (*crypto.Roster, error) {
	var r *crypto.Roster
	err := s.readOp(op, func(oc *opCtx) error {
		r = oc.currentRoster()
		if r == nil {
			return ErrNoState
		}
		return nil
	})
	return r, err
}
