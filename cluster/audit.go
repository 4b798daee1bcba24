package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"liaison/crypto"
)

// The audit trail and the cluster admin list live in the FSM's file, so
// they are replicated through Raft, included in snapshots and backups, and
// restored with them:
//
//	meta/audit_head         -> seq(8) hash(32) of the last audit entry
//	admins/list             -> the current crypto.AdminList encoding
//	adminnonces/<nonce>     -> time_ms(8) of the admin request that used it
//	audit/<seq BE>          -> a crypto.AuditEntry encoding
var (
	bucketAdmins = []byte("admins")
	bucketNonces = []byte("adminnonces")
	bucketAudit  = []byte("audit")
	keyList      = []byte("list")
	keyAuditHead = []byte("audit_head")
)

// auditState is the admin list and the audit trail's head. The store keeps
// the committed one; apply works on a copy inside its transaction.
type auditState struct {
	admins *crypto.AdminList // nil: no admins configured
	seq    uint64
	head   [HashLen]byte

	dirtyHead, dirtyAdmins bool
}

// loadAudit reads the admin list and audit head, checking the head against
// the trail's last entry.
func loadAudit(tx *bolt.Tx) (auditState, error) {
	var as auditState
	if v := tx.Bucket(bucketMeta).Get(keyAuditHead); v != nil {
		if len(v) != 8+HashLen {
			return as, fmt.Errorf("%w: audit head of %d bytes", ErrCorrupt, len(v))
		}
		as.seq = binary.BigEndian.Uint64(v)
		copy(as.head[:], v[8:])
		ab := tx.Bucket(bucketAudit)
		if ab == nil {
			return as, fmt.Errorf("%w: audit head without a trail", ErrCorrupt)
		}
		e, err := crypto.DecodeAuditEntry(ab.Get(seqKey(as.seq)))
		if err != nil || e.Seq != as.seq || e.Hash() != as.head {
			return as, fmt.Errorf("%w: audit head does not match entry %d", ErrCorrupt, as.seq)
		}
	}
	if b := tx.Bucket(bucketAdmins); b != nil {
		if v := b.Get(keyList); v != nil {
			l, err := crypto.DecodeAdminList(v)
			if err != nil {
				return as, fmt.Errorf("%w: admin list: %v", ErrCorrupt, err)
			}
			as.admins = l
		}
	}
	return as, nil
}

// appendAudit adds an entry to the trail inside tx.
func (as *auditState) appendAudit(tx *bolt.Tx, timeMS int64, kind crypto.AuditKind, body []byte) error {
	ab, err := tx.CreateBucketIfNotExists(bucketAudit)
	if err != nil {
		return err
	}
	ab.FillPercent = 1.0
	e := &crypto.AuditEntry{Seq: as.seq + 1, TimeMS: timeMS, Prev: as.head, Kind: kind, Body: body}
	if err := ab.Put(seqKey(e.Seq), e.Encode()); err != nil {
		return err
	}
	as.seq, as.head, as.dirtyHead = e.Seq, e.Hash(), true
	return nil
}

// flush writes what changed inside tx.
func (as *auditState) flush(tx *bolt.Tx) error {
	if as.dirtyHead {
		v := make([]byte, 8+HashLen)
		binary.BigEndian.PutUint64(v, as.seq)
		copy(v[8:], as.head[:])
		if err := tx.Bucket(bucketMeta).Put(keyAuditHead, v); err != nil {
			return err
		}
	}
	if as.dirtyAdmins {
		b, err := tx.CreateBucketIfNotExists(bucketAdmins)
		if err != nil {
			return err
		}
		if err := b.Put(keyList, as.admins.Encode()); err != nil {
			return err
		}
	}
	as.dirtyHead, as.dirtyAdmins = false, false
	return nil
}

// applyAdmin applies one admin command (kinds 6-8) inside tx: it checks it
// deterministically (every node reaches the same answer), applies what it
// changes and appends its audit entry. A refused command changes nothing
// and answers an error wrapping ErrUnauthorized, ErrStaleHead,
// ErrAdminsExist or ErrInvalid.
func (as *auditState) applyAdmin(tx *bolt.Tx, cmd *command) (applyOut, error) {
	kind, _ := auditKind(cmd.kind)
	refuse := func(base error, err error) (applyOut, error) {
		return applyOut{err: fmt.Errorf("%w: %v", base, err)}, nil
	}
	switch cmd.kind {
	case commandAdminAction:
		req, err := crypto.DecodeAdminRequest(cmd.body)
		if err != nil {
			return refuse(ErrUnauthorized, err)
		}
		used := func(nonce []byte) bool {
			nb := tx.Bucket(bucketNonces)
			return nb != nil && nb.Get(nonce) != nil
		}
		next, err := checkAdminRequest(as.admins, req, cmd.timeMS, "the leader's", used)
		if err != nil {
			return applyOut{err: err}, nil
		}
		nb, err := tx.CreateBucketIfNotExists(bucketNonces)
		if err != nil {
			return applyOut{}, err
		}
		if err := pruneNonces(nb, cmd.timeMS-2*crypto.AdminRequestWindowMS); err != nil {
			return applyOut{}, err
		}
		if err := nb.Put(req.Nonce[:], seqKey(uint64(cmd.timeMS))); err != nil {
			return applyOut{}, err
		}
		if next != nil {
			as.admins, as.dirtyAdmins = next, true
		}
	case commandAdminBootstrap:
		_, l, err := crypto.ParseAdminBootstrapBody(cmd.body)
		if err != nil {
			return refuse(ErrInvalid, err)
		}
		if as.admins != nil {
			return refuse(ErrAdminsExist, fmt.Errorf("the cluster has %d admins (list version %d)", len(as.admins.Admins), as.admins.Seq))
		}
		if l.Seq != 0 || l.Prev != ([32]byte{}) {
			return refuse(ErrInvalid, fmt.Errorf("bootstrap admin list is not a genesis"))
		}
		as.admins, as.dirtyAdmins = l, true
	case commandNodeJoin:
		if err := crypto.CheckAuditBody(kind, cmd.body); err != nil {
			return refuse(ErrInvalid, err)
		}
	}
	if err := as.appendAudit(tx, cmd.timeMS, kind, cmd.body); err != nil {
		return applyOut{}, err
	}
	return applyOut{results: []Result{{Seq: as.seq}}}, nil
}

// checkAdminRequest makes the checks a decoded admin request must pass
// against the admin list l at nowMS (Unix ms, on the clock named for the
// error): its signer is an admin of l, it was signed within
// crypto.AdminRequestWindowMS, its nonce is not used, and an admin list
// change applies to l. It returns the list the request leads to (nil: the
// list does not change). AuthorizeAdmin runs it on this node's clock before
// proposing the request, and the FSM again on the leader's, so both refuse
// the same requests the same way.
func checkAdminRequest(l *crypto.AdminList, req *crypto.AdminRequest, nowMS int64, clock string, used func(nonce []byte) bool) (*crypto.AdminList, error) {
	if err := l.Authorize(req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if d := req.Time - nowMS; d > crypto.AdminRequestWindowMS || d < -crypto.AdminRequestWindowMS {
		return nil, fmt.Errorf("%w: request signed %d s away from %s clock (window %d s)", ErrUnauthorized, d/1000, clock, crypto.AdminRequestWindowMS/1000)
	}
	if used(req.Nonce[:]) {
		return nil, fmt.Errorf("%w: replayed request: nonce %x already used", ErrUnauthorized, req.Nonce[:4])
	}
	if !crypto.IsAdminListAction(req.Action) {
		return nil, nil
	}
	next, err := l.ApplyRequest(req)
	switch {
	case err == nil:
		return next, nil
	case errors.Is(err, crypto.ErrNotClusterAdmin):
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	case errors.Is(err, crypto.ErrNotHead):
		return nil, fmt.Errorf("%w: %v", ErrStaleHead, err)
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
}

// pruneNonces forgets nonces of requests older than before (ms): those
// requests are outside the time window and refused anyway.
func pruneNonces(nb *bolt.Bucket, before int64) error {
	var old [][]byte
	err := nb.ForEach(func(k, v []byte) error {
		if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < before {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := nb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// adminList returns the current admin list (nil: none). Lists are
// immutable values.
func (s *store) adminList() *crypto.AdminList {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.adm.admins
}

// auditHead returns the sequence and hash of the last audit entry.
func (s *store) auditHead() (uint64, [HashLen]byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.adm.seq, s.adm.head
}

// nonceUsed reports whether an admin request nonce was already accepted.
func (s *store) nonceUsed(nonce []byte) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return false
	}
	used := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if nb := tx.Bucket(bucketNonces); nb != nil {
			used = nb.Get(nonce) != nil
		}
		return nil
	})
	return used
}

// readAudit returns up to maxCount encoded audit entries from sequence from
// (and about maxBytes, at least one), in one short read transaction.
func (s *store) readAudit(from uint64, maxCount, maxBytes int) ([][]byte, error) {
	if from == 0 || maxCount <= 0 {
		return nil, fmt.Errorf("%w: audit from %d count %d", ErrInvalid, from, maxCount)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAudit)
		if ab == nil {
			return nil
		}
		size := 0
		c := ab.Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < maxCount && size < maxBytes; k, v = c.Next() {
			out = append(out, bytes.Clone(v))
			size += len(v)
		}
		return nil
	})
	return out, err
}
