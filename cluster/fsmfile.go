package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// The FSM's file is a copy of what the Raft log holds: everything in it came
// from committed entries, and raft fsyncs each entry on a majority before it
// commits. So the FSM does not need to fsync its own commits for an
// acknowledged write to survive, as long as a node never trusts an FSM file
// that a power failure may have left half written. That is what the marker
// file next to it is for:
//
//	fsm.boot: "dirty <boot id>\n" while the node runs without fsync,
//	          "clean\n" after a clean close (the file was fsynced first).
//
// A process that dies (SIGKILL, panic, out of memory) loses nothing the
// kernel already holds: its writes are in the page cache, which the next
// process on the same boot reads. Only the operating system going down can
// lose them, and that changes the kernel's boot id. So on open:
//
//   - no marker: the file was always written with fsync (FSMSync, or an
//     older version): trusted;
//   - "clean": trusted;
//   - "dirty" with the current boot id: trusted;
//   - "dirty" with another boot id, or the boot id unknown: not trusted. The
//     file is removed and the node rebuilds its state from the newest Raft
//     snapshot and the log after it (catchUpFromSnapshot, then raft's own
//     replay), exactly as for a node whose FSM file was lost.
//
// Where the boot id cannot be read, or Config.FSMSync is set, the FSM fsyncs
// every commit as before (and first fsyncs a file left dirty by an earlier
// run of this boot, then removes the marker).

// fsmMarkerName is the marker's file name, next to fsm.db.
const fsmMarkerName = "fsm.boot"

// maxMarker bounds the marker file read on open.
const maxMarker = 256

// bootIDPath is where Linux exposes the random id of the current boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// readBootID returns the current boot's id, or an error where the system
// does not expose one.
func readBootID() (string, error) {
	b, err := readBounded(bootIDPath, maxMarker)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("boot id %q is not usable", id)
	}
	return id, nil
}

// fsmDurability decides how the FSM's file is written and whether the file
// found on disk can be trusted.
type fsmDurability struct {
	dbPath, markerPath string
	boot               string // current boot id; "" when fsync is on
}

// prepareFSMFile checks the FSM file at path against its marker, removes
// it if it cannot be trusted, and returns how to write it from now on:
// noSync true means the caller opens it without fsync and must call
// markDirty before its first write (openStore does both).
func prepareFSMFile(path string, forceSync bool, bootID func() (string, error), log *slog.Logger) (*fsmDurability, error) {
	d := &fsmDurability{dbPath: path, markerPath: filepath.Join(filepath.Dir(path), fsmMarkerName)}
	boot, bootErr := bootID()
	marker, err := readBounded(d.markerPath, maxMarker)
	switch {
	case errors.Is(err, os.ErrNotExist):
		marker = nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", d.markerPath, err)
	}
	trusted, why := markerTrusts(marker, boot, bootErr)
	if !trusted {
		if _, err := os.Stat(path); err == nil {
			log.Warn("fsm file may be incomplete after the system went down; rebuilding it from the Raft snapshot and log",
				"file", path, "reason", why)
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("remove untrusted %s: %w", path, err)
			}
		}
		if err := os.Remove(d.markerPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	if forceSync || bootErr != nil {
		if bootErr != nil && !forceSync {
			log.Info("fsm file is written with fsync: no boot id on this system", "err", bootErr)
		}
		return d, nil
	}
	d.boot = boot
	return d, nil
}

// markerTrusts says whether an FSM file with this marker can be used.
func markerTrusts(marker []byte, boot string, bootErr error) (bool, string) {
	if marker == nil {
		return true, ""
	}
	line := string(bytes.TrimSpace(marker))
	if line == "clean" {
		return true, ""
	}
	if id, ok := strings.CutPrefix(line, "dirty "); ok {
		if bootErr != nil {
			return false, fmt.Sprintf("written without fsync and the boot id is unknown: %v", bootErr)
		}
		if id == boot {
			return true, ""
		}
		return false, "written without fsync during boot " + id + ", now boot " + boot
	}
	return false, fmt.Sprintf("marker %q is not understood", line)
}

// noSync reports whether the FSM's file is written without fsync.
func (d *fsmDurability) noSync() bool { return d.boot != "" }

// markDirty records, durably, that the file is about to be written without
// fsync during this boot. It must return before the first such write.
func (d *fsmDurability) markDirty() error {
	return writeMarker(d.markerPath, "dirty "+d.boot+"\n")
}

// markClean records that the file has been fsynced and closed.
func (d *fsmDurability) markClean() error {
	return writeMarker(d.markerPath, "clean\n")
}

// dropMarker removes the marker once the file is known to be on disk (the
// caller fsynced it): from then on it is written with fsync.
func (d *fsmDurability) dropMarker() error {
	err := os.Remove(d.markerPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(d.markerPath))
}

// writeMarker replaces the marker atomically and durably.
func writeMarker(path, content string) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, strings.NewReader(content)); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// readBounded reads a small file, failing if it is longer than limit.
func readBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is longer than %d bytes", path, limit)
	}
	return b, nil
}
