package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Integrity checks run before a node uses a bbolt file it did not just
// create: its own files on start, and a snapshot or backup before it
// replaces the FSM's file. bbolt checksums only its meta pages, so a file
// cut short or damaged elsewhere would otherwise be mapped and read as it
// is: a truncated file makes bbolt panic (or fault on a page past the end),
// and a flipped byte in a stored entry would be served as if it were data.
// A node refuses such a file with ErrCorrupt, naming it; the operator
// restores the node from the others (wipe its data dir and join again).

// checkBoltFile verifies that the bbolt file at path is no shorter than its
// meta page says and passes bbolt's page consistency check. A missing file
// is fine (it will be created).
func checkBoltFile(path string) (err error) {
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		// bbolt initialises an empty file; a crash can leave one behind
		// before the first write.
		return nil
	}
	defer func() {
		// bbolt panics on some damaged pages it reads in this goroutine
		// (opening, the freelist); tx.Check's own page walk runs in a
		// goroutine of bbolt's and reports what it finds as errors.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("%w: %s does not open: %v", ErrCorrupt, path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); need > fi.Size() {
			return fmt.Errorf("%w: %s is truncated: %d bytes, its last commit needs %d", ErrCorrupt, path, fi.Size(), need)
		}
		// Drain every error: the check's goroutine reads the transaction
		// until it has sent them all.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
			}
		}
		return first
	})
}

// verifyLog checks one operation's stored log against its state: every
// sequence from h.First to h.Last present, each record's chain value
// SHA-256(previous chain || entry) starting from h.FirstPrev, and every
// dedupe id of a held entry pointing at a record with that id.
func verifyLog(op []byte, ob *bolt.Bucket, h Head) error {
	lb := ob.Bucket(bucketLog)
	if lb == nil {
		return fmt.Errorf("%w: operation %q: no log bucket", ErrCorrupt, op)
	}
	// Retention removes entries below h.First (roster commits below it
	// stay; loadRoster verifies their signatures); the state keeps the
	// chain value of entry First-1, so the chain is checked from there.
	want := h.First
	prev := h.FirstPrev
	c := lb.Cursor()
	for k, v := c.Seek(seqKey(h.First)); k != nil; k, v = c.Next() {
		if len(k) != 8 || binary.BigEndian.Uint64(k) != want || len(v) < recHeader {
			return fmt.Errorf("%w: operation %q: entry %d missing or malformed", ErrCorrupt, op, want)
		}
		var chain [HashLen]byte
		copy(chain[:], v[recChain:recChain+HashLen])
		if chainNext(prev, v[recHeader:]) != chain {
			return fmt.Errorf("%w: operation %q: entry %d does not match its hash chain", ErrCorrupt, op, want)
		}
		prev = chain
		want++
	}
	if want != h.Last+1 {
		return fmt.Errorf("%w: operation %q: log ends at %d, state says %d", ErrCorrupt, op, want-1, h.Last)
	}
	if ids := ob.Bucket(bucketIDs); ids != nil {
		err := ids.ForEach(func(id, s []byte) error {
			if len(id) != MsgIDLen || len(s) != 8 {
				return fmt.Errorf("%w: operation %q: malformed dedupe entry", ErrCorrupt, op)
			}
			seq := binary.BigEndian.Uint64(s)
			v := lb.Get(s)
			if seq < h.First && v == nil {
				return nil // removed by retention
			}
			if seq > h.Last || len(v) < recHeader || !bytes.Equal(v[recMsgID:recMsgID+MsgIDLen], id) {
				return fmt.Errorf("%w: operation %q: dedupe entry for %x points at %d, which does not carry it", ErrCorrupt, op, id, seq)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
