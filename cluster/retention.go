package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"liaison/crypto"
)

// Retention is an operation's retention policy: entries older than MaxAge,
// or beyond the newest MaxCount, are removed, except roster commits. Zero
// fields mean no limit of that kind.
type Retention struct {
	MaxAge   time.Duration `json:"max_age"`
	MaxCount uint64        `json:"max_count"`
}

// IsZero reports whether p keeps everything.
func (p Retention) IsZero() bool { return p.MaxAge <= 0 && p.MaxCount == 0 }

// String describes p for people.
func (p Retention) String() string {
	if p.IsZero() {
		return "keep everything"
	}
	s := ""
	if p.MaxAge > 0 {
		s = "max age " + p.MaxAge.String()
	}
	if p.MaxCount > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("max count %d", p.MaxCount)
	}
	return s
}

// RetainedEntry is a roster commit kept below an operation's first held
// sequence.
type RetainedEntry struct {
	Seq   uint64
	Entry []byte
}

// applyControl applies a retention or compact command inside the apply
// transaction. heads returns an operation's current head. It returns the
// new head of the operation it changed ("" for none); an error is a storage
// failure (the whole apply fails), never a refusal: control commands are
// proposed by nodes, not clients, and one that does not apply is a no-op.
func applyControl(tx *bolt.Tx, cmd *command, heads func(string) (Head, bool)) (Head, string, error) {
	switch {
	case cmd.retention != nil:
		r := cmd.retention
		pb := tx.Bucket(bucketPolicy)
		if r.clear {
			return Head{}, "", pb.Delete([]byte(r.op))
		}
		return Head{}, "", pb.Put([]byte(r.op), encodePolicy(r.policy))
	case cmd.compact != nil:
		return compact(tx, cmd.compact, heads)
	}
	return Head{}, "", nil
}

// compact removes op's entries before c.before (at most
// maxCompactPerCommand of them, never past the head), keeping roster
// commits, and advances the anchors of the new first entry.
func compact(tx *bolt.Tx, c *compactCmd, heads func(string) (Head, bool)) (Head, string, error) {
	h, ok := heads(c.op)
	if !ok {
		return h, "", nil
	}
	before := min(c.before, h.Last+1, h.First+maxCompactPerCommand)
	if before <= h.First {
		return h, "", nil
	}
	ob := tx.Bucket(bucketOps).Bucket([]byte(c.op))
	if ob == nil {
		return h, "", fmt.Errorf("%w: operation %q has a head but no bucket", ErrCorrupt, c.op)
	}
	lb, ids := ob.Bucket(bucketLog), ob.Bucket(bucketIDs)
	if lb == nil || ids == nil {
		return h, "", fmt.Errorf("%w: operation %q lacks its log", ErrCorrupt, c.op)
	}
	prev, logChain := h.FirstPrev, h.FirstLog
	for seq := h.First; seq < before; seq++ {
		key := seqKey(seq)
		v := lb.Get(key)
		if len(v) < recHeader {
			return h, "", fmt.Errorf("%w: %s: entry %d missing", ErrCorrupt, c.op, seq)
		}
		logChain = crypto.LogChain(logChain, seq, v[recHeader:])
		copy(prev[:], v[recChain:recChain+HashLen])
		if v[recKind] == KindCommit {
			continue
		}
		msgID := bytes.Clone(v[recMsgID : recMsgID+MsgIDLen])
		if err := lb.Delete(key); err != nil {
			return h, "", err
		}
		if err := ids.Delete(msgID); err != nil {
			return h, "", err
		}
	}
	h.First, h.FirstPrev, h.FirstLog = before, prev, logChain
	return h, c.op, nil
}

func encodePolicy(p Retention) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v[0:8], uint64(p.MaxAge.Milliseconds()))
	binary.BigEndian.PutUint64(v[8:16], p.MaxCount)
	return v
}

func decodePolicy(v []byte) (Retention, error) {
	if len(v) != 16 {
		return Retention{}, fmt.Errorf("%w: retention policy of %d bytes", ErrCorrupt, len(v))
	}
	age := binary.BigEndian.Uint64(v[0:8])
	if age > maxAgeMS {
		return Retention{}, fmt.Errorf("%w: retention max age %d ms", ErrCorrupt, age)
	}
	return Retention{MaxAge: time.Duration(age) * time.Millisecond, MaxCount: binary.BigEndian.Uint64(v[8:16])}, nil
}

// policy returns the policy set for op, if any.
func (s *store) policy(op string) (Retention, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return Retention{}, false, ErrClosed
	}
	var p Retention
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPolicy).Get([]byte(op))
		if v == nil {
			return nil
		}
		found = true
		var err error
		p, err = decodePolicy(v)
		return err
	})
	return p, found, err
}

// compactTarget returns the sequence op should be compacted before under
// policy p at time now (h.First when nothing is due). The age scan reads at
// most maxCompactPerCommand records.
func (s *store) compactTarget(op string, p Retention, now time.Time) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	h, ok := s.heads[op]
	if !ok || h.First > h.Last {
		return h.First, nil
	}
	target := h.First
	if p.MaxCount > 0 && h.Last > p.MaxCount {
		target = max(target, h.Last-p.MaxCount+1)
	}
	if p.MaxAge > 0 {
		cutoff := uint64(now.Add(-p.MaxAge).UnixMilli())
		err := s.db.View(func(tx *bolt.Tx) error {
			lb := tx.Bucket(bucketOps).Bucket([]byte(op)).Bucket(bucketLog)
			c := lb.Cursor()
			n := 0
			for k, v := c.Seek(seqKey(h.First)); k != nil && n < maxCompactPerCommand; k, v = c.Next() {
				if len(v) < recHeader {
					return fmt.Errorf("%w: %s: short record", ErrCorrupt, op)
				}
				seq := binary.BigEndian.Uint64(k)
				if binary.BigEndian.Uint64(v[recTime:]) >= cutoff {
					break
				}
				target = max(target, seq+1)
				n++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return min(target, h.Last+1, h.First+maxCompactPerCommand), nil
}

// retained returns the roster commits of op with sequences in [from,
// before), up to about maxBytes (at least one).
func (s *store) retained(op string, from, before uint64, maxBytes int) ([]RetainedEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	var out []RetainedEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOps).Bucket([]byte(op))
		if ob == nil {
			return nil
		}
		cb, lb := ob.Bucket(bucketCommits), ob.Bucket(bucketLog)
		if cb == nil {
			return nil
		}
		size := 0
		c := cb.Cursor()
		for k, _ := c.Seek(seqKey(from)); k != nil && size < maxBytes; k, _ = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq >= before {
				break
			}
			v := lb.Get(k)
			if len(v) < recHeader || v[recKind] != KindCommit {
				return fmt.Errorf("%w: %s: commit %d missing", ErrCorrupt, op, seq)
			}
			out = append(out, RetainedEntry{Seq: seq, Entry: bytes.Clone(v[recHeader:])})
			size += len(v) - recHeader
		}
		return nil
	})
	return out, err
}

// retainedCount counts the roster commits of op with sequences in [from,
// before).
func (s *store) retainedCount(op string, from, before uint64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	count := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOps).Bucket([]byte(op))
		if ob == nil || ob.Bucket(bucketCommits) == nil {
			return nil
		}
		c := ob.Bucket(bucketCommits).Cursor()
		for k, _ := c.Seek(seqKey(from)); k != nil && binary.BigEndian.Uint64(k) < before; k, _ = c.Next() {
			count++
		}
		return nil
	})
	return count, err
}

// opNames lists the operations the store holds, sorted.
func (s *store) opNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.heads))
	for op := range s.heads {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Retained returns the roster commits of op kept below its first held
// sequence, with sequences in [from, before), up to about maxBytes (at
// least one if any).
func (n *Node) Retained(op string, from, before uint64, maxBytes int) ([]RetainedEntry, error) {
	before = min(before, n.st.head(op).First)
	if from == 0 || from >= before {
		return nil, nil
	}
	return n.st.retained(op, from, before, maxBytes)
}

// RetainedCount counts the roster commits of op kept below its first held
// sequence with sequences in [from, before).
func (n *Node) RetainedCount(op string, from, before uint64) (int, error) {
	before = min(before, n.st.head(op).First)
	if from == 0 || from >= before {
		return 0, nil
	}
	return n.st.retainedCount(op, from, before)
}

// RetentionOf returns the policy that applies to op: its own if one was
// set (custom true), else this node's default.
func (n *Node) RetentionOf(op string) (p Retention, custom bool, err error) {
	p, custom, err = n.st.policy(op)
	if err != nil || custom {
		return p, custom, err
	}
	return n.cfg.Retention, false, nil
}

// SetRetention sets op's retention policy through Raft; clear removes it
// (the node's default applies again). On a follower the request is
// forwarded to the leader. It returns once this node has applied it.
func (n *Node) SetRetention(ctx context.Context, op string, p Retention, clear bool) error {
	if op == "" || len(op) > MaxOpLen || p.MaxAge < 0 || p.MaxAge.Milliseconds() > maxAgeMS {
		return fmt.Errorf("%w: operation name and a non-negative max age required", ErrInvalid)
	}
	if p.MaxAge > 0 && p.MaxAge < time.Second {
		return fmt.Errorf("%w: max age below one second", ErrInvalid)
	}
	_, err := n.propose(ctx, encodeRetention(op, p, clear))
	return err
}

// CompactNow runs one retention pass now (the leader does one every
// RetentionInterval) and returns the number of compact commands applied.
// It fails with ErrNotLeader on a follower.
func (n *Node) CompactNow(ctx context.Context) (int, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	done := 0
	for _, op := range n.st.opNames() {
		for {
			p, _, err := n.RetentionOf(op)
			if err != nil {
				return done, err
			}
			if p.IsZero() {
				break
			}
			first := n.st.head(op).First
			target, err := n.st.compactTarget(op, p, n.now())
			if err != nil {
				return done, err
			}
			if target <= first {
				break
			}
			if _, _, err := n.proposeLocal(ctx, encodeCompact(op, target)); err != nil {
				return done, err
			}
			done++
			n.cfg.Logger.Info("compacted operation", "op", op, "before", target, "policy", p.String())
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
		}
	}
	return done, nil
}

// retentionLoop runs CompactNow every RetentionInterval while this node
// leads.
func (n *Node) retentionLoop() {
	defer n.bg.Done()
	t := time.NewTicker(n.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RetentionInterval)
		if _, err := n.CompactNow(ctx); err != nil {
			n.cfg.Logger.Warn("retention pass failed", "err", err)
		}
		cancel()
	}
}
