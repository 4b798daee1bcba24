package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"liaison/crypto"
)

// The FSM's bbolt file:
//
//	meta/applied              -> Raft index (8 bytes BE) of the last applied entry
//	ops/<op>/state            -> last(8) first(8) chain(32) [first_prev(32) first_log(32)]
//	ops/<op>/log/<seq BE>     -> record: chain(32) time_ms(8) class(1) kind(1) msgid(16) entry
//	ops/<op>/ids/<msgid>      -> seq (8 bytes BE)
//	ops/<op>/commits/<seq BE> -> empty: the sequences of roster commits
//	retention/<op>            -> max_age_ms(8) max_count(8): a policy set for op
//
// Retention removes log records (and their ids) before the operation's
// first held sequence, except roster commits, which are kept for members
// who were offline; state then carries the chain anchors of first-1.
//
// Sequence keys are big-endian so cursor order is log order, and the log
// bucket is append-only (FillPercent 1.0).
var (
	bucketMeta    = []byte("meta")
	bucketOps     = []byte("ops")
	bucketLog     = []byte("log")
	bucketIDs     = []byte("ids")
	bucketCommits = []byte("commits")
	bucketPolicy  = []byte("retention")
	keyApplied    = []byte("applied")
	keyState      = []byte("state")
)

const (
	recChain  = 0
	recTime   = recChain + HashLen
	recClass  = recTime + 8
	recKind   = recClass + 1
	recMsgID  = recKind + 1
	recHeader = recMsgID + MsgIDLen
	stateLen  = 16 + HashLen
	// stateLenAnchored is the state of an operation compacted at least once.
	stateLenAnchored = stateLen + 2*HashLen
)

// store is the FSM's bbolt file plus an in-memory copy of every operation's
// head and roster. mu guards db (replaced on restore), heads and rosters.
type store struct {
	path string

	mu      sync.RWMutex
	db      *bolt.DB
	heads   map[string]Head
	rosters map[string]*crypto.Roster
	adm     auditState

	// dur, when set, says how the node's own FSM file is written (see
	// fsmfile.go); nil means with fsync (checks, tests, backups).
	dur *fsmDurability
}

func openStore(path string) (*store, error) { return openStoreFile(path, nil) }

// openFSMStore opens the node's own FSM file as d decided (prepareFSMFile).
func openFSMStore(d *fsmDurability) (*store, error) { return openStoreFile(d.dbPath, d) }

// openStoreFile checks and opens the store at path. With d set and fsync
// off, it marks the file dirty before the first write; with fsync on, it
// first makes sure anything an earlier run of this boot wrote without
// fsync is on disk, then drops the marker.
func openStoreFile(path string, d *fsmDurability) (*store, error) {
	if err := checkBoltFile(path); err != nil {
		return nil, err
	}
	noSync := d != nil && d.noSync()
	if noSync {
		if err := d.markDirty(); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, noSync)
	if err != nil {
		return nil, err
	}
	if d != nil && !noSync {
		if err := db.Sync(); err != nil {
			db.Close()
			return nil, fmt.Errorf("sync %s: %w", path, err)
		}
		if err := d.dropMarker(); err != nil {
			db.Close()
			return nil, err
		}
	}
	s := &store{path: path, db: db, dur: d}
	if err := s.loadLocked(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens (creating) a store file; noSync only for the node's own
// FSM file under a dirty marker.
func openBolt(path string, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: mmapSize})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if db.NoSync {
		db.Close()
		return nil, fmt.Errorf("open %s: %w: fsync is off", path, ErrCorrupt)
	}
	db.NoSync = noSync
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketPolicy); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketOps)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return db, nil
}

// loadLocked reads every operation's head into memory and checks it against
// the log's last entry. The caller holds mu or owns s exclusively.
func (s *store) loadLocked() error {
	heads := make(map[string]Head)
	rosters := make(map[string]*crypto.Roster)
	var adm auditState
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if adm, err = loadAudit(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketOps).ForEachBucket(func(name []byte) error {
			ob := tx.Bucket(bucketOps).Bucket(name)
			h, err := decodeState(ob.Get(keyState))
			if err != nil {
				return fmt.Errorf("operation %q: %w", name, err)
			}
			lb := ob.Bucket(bucketLog)
			if lb == nil {
				return fmt.Errorf("operation %q: %w: no log bucket", name, ErrCorrupt)
			}
			k, v := lb.Cursor().Last()
			switch {
			case k != nil && binary.BigEndian.Uint64(k) == h.Last:
				if len(v) < recHeader || !bytes.Equal(v[recChain:recChain+HashLen], h.Chain[:]) {
					return fmt.Errorf("operation %q: %w: state does not match the log's last entry", name, ErrCorrupt)
				}
			case h.Last >= h.First:
				return fmt.Errorf("operation %q: %w: state says %d..%d, the log's last entry is missing", name, ErrCorrupt, h.First, h.Last)
			case k != nil && binary.BigEndian.Uint64(k) >= h.First:
				return fmt.Errorf("operation %q: %w: an entry past the head", name, ErrCorrupt)
			}
			if err := verifyLog(name, ob, h); err != nil {
				return err
			}
			heads[string(name)] = h
			r, err := loadRoster(ob)
			if err != nil {
				return fmt.Errorf("operation %q: %w", name, err)
			}
			if r != nil {
				rosters[string(name)] = r
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", s.path, err)
	}
	s.heads = heads
	s.rosters = rosters
	s.adm = adm
	return nil
}

// loadRoster re-verifies an operation's roster chain from its commit
// entries; nil if the operation has none.
func loadRoster(ob *bolt.Bucket) (*crypto.Roster, error) {
	cb := ob.Bucket(bucketCommits)
	if cb == nil {
		return nil, nil
	}
	lb := ob.Bucket(bucketLog)
	var commits []*crypto.Commit
	err := cb.ForEach(func(k, _ []byte) error {
		v := lb.Get(k)
		if len(v) < recHeader || v[recKind] != KindCommit {
			return fmt.Errorf("%w: commit entry %x missing", ErrCorrupt, k)
		}
		c, err := crypto.DecodeCommit(v[recHeader:])
		if err != nil {
			return fmt.Errorf("%w: commit entry %x: %v", ErrCorrupt, k, err)
		}
		commits = append(commits, c)
		return nil
	})
	if err != nil || len(commits) == 0 {
		return nil, err
	}
	r, err := crypto.VerifyChain(commits)
	if err != nil {
		return nil, fmt.Errorf("%w: roster chain: %v", ErrCorrupt, err)
	}
	return r, nil
}

func decodeState(v []byte) (Head, error) {
	var h Head
	if len(v) != stateLen && len(v) != stateLenAnchored {
		return h, fmt.Errorf("%w: state of %d bytes", ErrCorrupt, len(v))
	}
	h.Last = binary.BigEndian.Uint64(v[0:8])
	h.First = binary.BigEndian.Uint64(v[8:16])
	copy(h.Chain[:], v[16:stateLen])
	if len(v) == stateLenAnchored {
		copy(h.FirstPrev[:], v[stateLen:])
		copy(h.FirstLog[:], v[stateLen+HashLen:])
	}
	if h.First == 0 || h.First > h.Last+1 {
		return h, fmt.Errorf("%w: state first %d last %d", ErrCorrupt, h.First, h.Last)
	}
	return h, nil
}

func encodeState(h Head) []byte {
	n := stateLen
	if h.First > 1 {
		n = stateLenAnchored
	}
	v := make([]byte, n)
	binary.BigEndian.PutUint64(v[0:8], h.Last)
	binary.BigEndian.PutUint64(v[8:16], h.First)
	copy(v[16:], h.Chain[:])
	if h.First > 1 {
		copy(v[stateLen:], h.FirstPrev[:])
		copy(v[stateLen+HashLen:], h.FirstLog[:])
	}
	return v
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// chainNext returns SHA-256(prev || env).
func chainNext(prev [HashLen]byte, env []byte) [HashLen]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(env)
	var out [HashLen]byte
	h.Sum(out[:0])
	return out
}

// appliedIndex returns the last Raft index the store holds.
func (s *store) appliedIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	var idx uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
			idx = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return idx, err
}

// entryIn is one decoded Raft entry handed to apply.
type entryIn struct {
	index uint64
	cmd   command
	err   error // decode error: the entry is skipped and err returned
}

// applyOut is what apply returns for one Raft entry: a result or an error
// for each publish, or err for the whole entry.
type applyOut struct {
	results []Result
	errs    []error
	err     error
}

// apply appends the publishes of entries (in Raft order) in one bbolt
// transaction and returns one applyOut per entry plus the batches to
// announce. Entries at or below the stored applied index are skipped.
func (s *store) apply(entries []entryIn) ([]applyOut, []Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, nil, ErrClosed
	}
	outs := make([]applyOut, len(entries))
	var (
		batches    []Batch
		newHeads   = make(map[string]Head)
		newRosters = make(map[string]*crypto.Roster)
		batchIdx   = make(map[string]int) // op -> index in batches of its open batch
		adm        = s.adm
	)
	// headOf is an operation's head as of the entries applied so far.
	headOf := func(op string) (Head, bool) {
		if h, ok := newHeads[op]; ok {
			return h, true
		}
		h, ok := s.heads[op]
		return h, ok
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		ops := tx.Bucket(bucketOps)
		var applied uint64
		if v := meta.Get(keyApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		last := applied
		for i, e := range entries {
			if e.index <= applied {
				continue
			}
			last = e.index
			if e.err != nil {
				outs[i].err = e.err
				continue
			}
			if _, admin := auditKind(e.cmd.kind); admin {
				out, err := adm.applyAdmin(tx, &e.cmd)
				if err != nil {
					return err
				}
				outs[i] = out
				continue
			}
			if e.cmd.kind != commandPublish {
				h, changed, err := applyControl(tx, &e.cmd, headOf)
				if err != nil {
					return err
				}
				if changed != "" {
					newHeads[changed] = h
				}
				continue
			}
			res := make([]Result, len(e.cmd.pubs))
			var errs []error
			for j := range e.cmd.pubs {
				p := &e.cmd.pubs[j]
				h, ok := newHeads[p.Op]
				if !ok {
					if h, ok = s.heads[p.Op]; !ok {
						h = Head{First: 1}
					}
				}
				if seq, ok := lookupID(ops, p.Op, p.MsgID); ok {
					res[j] = Result{Seq: seq, Dup: true}
					continue
				}
				seq := h.Last + 1
				var next *crypto.Roster
				if p.Kind == KindMessage || p.Kind == KindTask {
					roster, ok := newRosters[p.Op]
					if !ok {
						roster = s.rosters[p.Op]
					}
					if err := checkMessage(roster, p.Envelope); err != nil {
						if errs == nil {
							errs = make([]error, len(e.cmd.pubs))
						}
						errs[j] = err
						continue
					}
				}
				if p.Kind == KindCommit {
					roster, ok := newRosters[p.Op]
					if !ok {
						roster = s.rosters[p.Op]
					}
					var err error
					if next, err = checkCommit(p.Op, roster, h.Last, p.Envelope); err != nil {
						if errs == nil {
							errs = make([]error, len(e.cmd.pubs))
						}
						errs[j] = err
						continue
					}
				}
				// Buckets are created only once the entry will be stored:
				// a refused publish changes nothing.
				ob, err := ops.CreateBucketIfNotExists([]byte(p.Op))
				if err != nil {
					return err
				}
				ids, err := ob.CreateBucketIfNotExists(bucketIDs)
				if err != nil {
					return err
				}
				if next != nil {
					cb, err := ob.CreateBucketIfNotExists(bucketCommits)
					if err != nil {
						return err
					}
					if err := cb.Put(seqKey(seq), nil); err != nil {
						return err
					}
					newRosters[p.Op] = next
					// Every accepted roster change lands in the audit
					// trail, carrying the commit (and its signature).
					if err := adm.appendAudit(tx, e.cmd.timeMS, crypto.AuditRosterCommit, crypto.RosterCommitBody(p.Op, seq, p.Envelope)); err != nil {
						return err
					}
				}
				lb, err := ob.CreateBucketIfNotExists(bucketLog)
				if err != nil {
					return err
				}
				lb.FillPercent = 1.0
				prev := h.Chain
				h.Chain = chainNext(prev, p.Envelope)
				h.Last = seq
				rec := make([]byte, recHeader+len(p.Envelope))
				copy(rec[recChain:], h.Chain[:])
				binary.BigEndian.PutUint64(rec[recTime:], uint64(e.cmd.timeMS))
				rec[recClass] = p.Class
				rec[recKind] = p.Kind
				copy(rec[recMsgID:], p.MsgID[:])
				copy(rec[recHeader:], p.Envelope)
				if err := lb.Put(seqKey(seq), rec); err != nil {
					return err
				}
				if err := ids.Put(p.MsgID[:], seqKey(seq)); err != nil {
					return err
				}
				newHeads[p.Op] = h
				res[j] = Result{Seq: seq}
				if bi, ok := batchIdx[p.Op]; ok && batches[bi].Seq+uint64(len(batches[bi].Envelopes)) == seq {
					batches[bi].Envelopes = append(batches[bi].Envelopes, p.Envelope)
					batches[bi].Classes = append(batches[bi].Classes, p.Class)
					batches[bi].Kinds = append(batches[bi].Kinds, p.Kind)
				} else {
					batchIdx[p.Op] = len(batches)
					batches = append(batches, Batch{Op: p.Op, Seq: seq, Prev: prev, Envelopes: [][]byte{p.Envelope}, Classes: []uint8{p.Class}, Kinds: []uint8{p.Kind}})
				}
			}
			outs[i].results = res
			outs[i].errs = errs
		}
		for op, h := range newHeads {
			if err := ops.Bucket([]byte(op)).Put(keyState, encodeState(h)); err != nil {
				return err
			}
		}
		if err := adm.flush(tx); err != nil {
			return err
		}
		if last != applied {
			return meta.Put(keyApplied, seqKey(last))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("apply: %w", err)
	}
	for op, h := range newHeads {
		s.heads[op] = h
	}
	for op, r := range newRosters {
		s.rosters[op] = r
	}
	s.adm = adm
	return outs, batches, nil
}

// lookupID returns the sequence of an entry already stored under msgID.
func lookupID(ops *bolt.Bucket, op string, msgID [MsgIDLen]byte) (uint64, bool) {
	ob := ops.Bucket([]byte(op))
	if ob == nil {
		return 0, false
	}
	ids := ob.Bucket(bucketIDs)
	if ids == nil {
		return 0, false
	}
	if v := ids.Get(msgID[:]); len(v) == 8 {
		return binary.BigEndian.Uint64(v), true
	}
	return 0, false
}

// checkMessage decides whether a message may be appended to an operation
// with the given roster (nil: an operation without a roster, whose messages
// are not checked). A message must be an envelope sealed in the current
// epoch: one sealed before a commit that got into the log ahead of it is
// refused (ErrStaleHead) and its sender re-seals it. So every message in the
// log belongs to the epoch current at its position, and a member reading the
// log in order always holds its keys, even after deleting older epochs on
// its own key update.
func checkMessage(roster *crypto.Roster, entry []byte) error {
	if roster == nil {
		return nil
	}
	h, err := crypto.ParseEnvelopeHeader(entry)
	if err != nil {
		return fmt.Errorf("%w: not an envelope: %v", ErrRejected, err)
	}
	switch {
	case h.Epoch < roster.Epoch:
		return fmt.Errorf("%w: sealed in epoch %d, the operation is in epoch %d", ErrStaleHead, h.Epoch, roster.Epoch)
	case h.Epoch > roster.Epoch:
		return fmt.Errorf("%w: sealed in epoch %d, the operation is in epoch %d", ErrRejected, h.Epoch, roster.Epoch)
	case int(h.SenderIndex) >= len(roster.Members):
		return fmt.Errorf("%w: sender index %d out of range", ErrRejected, h.SenderIndex)
	}
	return nil
}

// checkCommit decides whether a roster commit may be appended to op, whose
// log holds last entries and whose roster is current (nil: none yet). It is
// deterministic: every node reaches the same answer.
func checkCommit(op string, current *crypto.Roster, last uint64, entry []byte) (*crypto.Roster, error) {
	if current == nil && last > 0 {
		return nil, fmt.Errorf("%w: operation %q already has entries without a roster", ErrRejected, op)
	}
	_, next, err := crypto.CheckCommit(current, entry)
	switch {
	case errors.Is(err, crypto.ErrNotHead):
		return nil, fmt.Errorf("%w: %v", ErrStaleHead, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	case next.OpID != op:
		return nil, fmt.Errorf("%w: commit is for operation %q, not %q", ErrRejected, next.OpID, op)
	}
	return next, nil
}

// roster returns an operation's current roster, nil if it has none.
func (s *store) roster(op string) *crypto.Roster {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rosters[op]
}

// head returns an operation's head; an unknown operation has an empty log.
func (s *store) head(op string) Head {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if h, ok := s.heads[op]; ok {
		return h
	}
	return Head{First: 1}
}

// read returns up to maxCount entries (and about maxBytes of envelopes, at
// least one entry) of op starting at from, in one short read transaction.
// An empty batch means from is past the head.
func (s *store) read(op string, from uint64, maxCount, maxBytes int) (Batch, error) {
	b := Batch{Op: op, Seq: from}
	if from == 0 || maxCount <= 0 {
		return b, fmt.Errorf("%w: read from %d count %d", ErrInvalid, from, maxCount)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return b, ErrClosed
	}
	h, ok := s.heads[op]
	if !ok || from > h.Last {
		if ok && from == h.Last+1 {
			b.Prev = h.Chain
		}
		return b, nil
	}
	if from < h.First {
		return b, fmt.Errorf("%w: %d < first %d", ErrCompacted, from, h.First)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOps).Bucket([]byte(op))
		if ob == nil {
			return nil
		}
		lb := ob.Bucket(bucketLog)
		c := lb.Cursor()
		if from == h.First {
			b.Prev = h.FirstPrev
		} else {
			k, v := c.Seek(seqKey(from - 1))
			if k == nil || binary.BigEndian.Uint64(k) != from-1 || len(v) < recHeader {
				return fmt.Errorf("%w: %s: entry %d missing", ErrCorrupt, op, from-1)
			}
			copy(b.Prev[:], v[recChain:recChain+HashLen])
		}
		// The records stay valid until the transaction ends: collect
		// them, then copy every envelope into one allocation.
		n := int(min(uint64(maxCount), h.Last-from+1))
		recs := make([][]byte, 0, n)
		size := 0
		want := from
		for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) != want || len(v) < recHeader {
				return fmt.Errorf("%w: %s: entry %d missing", ErrCorrupt, op, want)
			}
			recs = append(recs, v)
			size += len(v) - recHeader
			want++
			if len(recs) >= maxCount || size >= maxBytes {
				break
			}
		}
		buf := make([]byte, 0, size)
		b.Envelopes = make([][]byte, len(recs))
		b.Classes = make([]uint8, len(recs))
		b.Kinds = make([]uint8, len(recs))
		for i, v := range recs {
			start := len(buf)
			buf = append(buf, v[recHeader:]...)
			// Capped, so that appending to one envelope cannot
			// overwrite the next.
			b.Envelopes[i] = buf[start:len(buf):len(buf)]
			b.Classes[i], b.Kinds[i] = v[recClass], v[recKind]
		}
		return nil
	})
	return b, err
}

func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	if s.noSync() {
		// Put everything on disk, then say so: the next start trusts
		// the file whatever happened to the system in between.
		if err := s.db.Sync(); err != nil {
			s.db.Close()
			s.db = nil
			return fmt.Errorf("sync %s: %w", s.path, err)
		}
		err := s.db.Close()
		s.db = nil
		if err != nil {
			return err
		}
		return s.dur.markClean()
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// noSync reports whether the store's file is written without fsync.
func (s *store) noSync() bool { return s.dur != nil && s.dur.noSync() }

// mmapSize is the initial mapping of the FSM's file. A large mapping means
// the file grows without a remap, and a remap is what makes a writer wait for
// every open read transaction (a snapshot, a catch-up read) to finish.
const mmapSize = 1 << 30
