package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"liaison/cluster"
	"liaison/cluster/pki"
	"liaison/crypto"
)

// maxAuditFile bounds a saved trail read with --in.
const maxAuditFile = 1 << 30

// adminAudit fetches (or reads) the audit trail, prints it and verifies it.
func adminAudit(ctx context.Context, e *env, hc *http.Client, outFile, inFile, wantHead string) error {
	var raw [][]byte
	var nodeHead, source string
	var err error
	if inFile != "" {
		raw, err = readAuditFile(inFile)
	} else {
		raw, nodeHead, source, err = fetchAudit(ctx, e, hc)
	}
	if err != nil {
		return err
	}
	if outFile != "" {
		if err := writeAuditFile(outFile, raw); err != nil {
			return err
		}
	}
	entries := make([]*crypto.AuditEntry, 0, len(raw))
	for i, b := range raw {
		en, err := crypto.DecodeAuditEntry(b)
		if err != nil {
			return fmt.Errorf("audit entry %d does not decode: %w", i+1, err)
		}
		entries = append(entries, en)
	}
	var opts crypto.AuditOptions
	if e.tlsCA != "" {
		// With the cluster CA, node joins must carry a node certificate
		// of it, for the node that joined.
		caPEM, err := os.ReadFile(e.tlsCA)
		if err != nil {
			return err
		}
		roots, err := pki.CertPool(caPEM)
		if err != nil {
			return err
		}
		opts.VerifyJoinCert = func(node string, cert *x509.Certificate, at time.Time) error {
			id, err := pki.VerifyNode(roots, []*x509.Certificate{cert}, at)
			if err == nil && id != node {
				err = fmt.Errorf("certificate of node %q used to join as %q", id, node)
			}
			return err
		}
	}
	recs, verr := crypto.VerifyAuditWith(entries, opts)
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tDETAILS")
	for _, r := range recs {
		details := sanitize(r.Details)
		if r.Err != nil {
			details += "  FAILED: " + sanitize(r.Err.Error())
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", r.Seq, time.UnixMilli(r.TimeMS).UTC().Format(time.RFC3339), r.Actor, r.Action, details)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var head string
	if n := len(entries); n > 0 {
		h := entries[n-1].Hash()
		head = hex.EncodeToString(h[:])
		fmt.Fprintf(e.stdout, "%d entries, head %s\n", n, head)
	} else {
		fmt.Fprintln(e.stdout, "the audit trail is empty")
	}
	if verr != nil {
		return fmt.Errorf("the audit trail does not verify: %w", verr)
	}
	if wantHead != "" && !strings.EqualFold(wantHead, head) {
		return fmt.Errorf("the audit trail ends at %s, not at the expected head %s", head, wantHead)
	}
	if nodeHead != "" && nodeHead != fmt.Sprintf("%d %s", len(entries), head) {
		return fmt.Errorf("the node reports head %q, the trail read ends at %d %s", nodeHead, len(entries), head)
	}
	if source != "" && len(raw) > 0 {
		if err := compareAuditHeads(ctx, e, hc, source, raw[len(raw)-1], len(raw)); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, "every signature and the chain verify")
	return nil
}

// compareAuditHeads asks every other relay in --relay for entry seq of its
// trail and checks that it is last, byte for byte: a node cannot show a
// trail the others do not hold.
func compareAuditHeads(ctx context.Context, e *env, hc *http.Client, source string, last []byte, seq int) error {
	bases, err := adminBases(e)
	if err != nil {
		return err
	}
	var agree []string
	for _, base := range bases {
		if base == source {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/cluster/audit?from=%d&limit=1", base, seq), nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintf(e.stderr, "liaison: %s: not compared: %v\n", hostOf(base), err)
			continue
		}
		page, err := readAuditStream(bufio.NewReader(resp.Body))
		status := resp.Status
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			fmt.Fprintf(e.stderr, "liaison: %s: not compared: %s\n", hostOf(base), status)
			continue
		case err == nil && len(page) == 0:
			// Behind: it has not applied entry seq yet.
			fmt.Fprintf(e.stderr, "liaison: %s: not compared: its trail is shorter (lagging?)\n", hostOf(base))
			continue
		case err != nil || !bytes.Equal(page[0], last):
			return fmt.Errorf("%s holds a different audit entry %d than %s: the trails differ", hostOf(base), seq, hostOf(source))
		}
		agree = append(agree, hostOf(base))
	}
	if len(agree) > 0 {
		fmt.Fprintf(e.stdout, "%s hold the same entry %d\n", strings.Join(agree, ", "), seq)
	}
	return nil
}

// fetchAudit reads the whole trail from the first relay that serves it,
// page by page, and returns the head the node reported with the last page
// and the relay's base URL.
func fetchAudit(ctx context.Context, e *env, hc *http.Client) ([][]byte, string, string, error) {
	bases, err := adminBases(e)
	if err != nil {
		return nil, "", "", err
	}
	var last error
	for _, base := range bases {
		var out [][]byte
		head, total := "", 0
		for {
			url := fmt.Sprintf("%s/cluster/audit?from=%d", base, len(out)+1)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return nil, "", "", err
			}
			resp, err := hc.Do(req)
			if err != nil {
				last = err
				break
			}
			if resp.StatusCode != http.StatusOK {
				last = httpFailure(resp)
				resp.Body.Close()
				break
			}
			page, err := readAuditStream(bufio.NewReader(resp.Body))
			head = resp.Header.Get(cluster.AuditHeadHeader)
			resp.Body.Close()
			if err != nil {
				last = fmt.Errorf("%s: %w", base, err)
				break
			}
			out = append(out, page...)
			for _, b := range page {
				total += len(b)
			}
			if total > maxAuditFile {
				return nil, "", "", fmt.Errorf("admin audit: %s: the trail exceeds %d bytes", base, maxAuditFile)
			}
			if len(page) == 0 {
				return out, head, base, nil
			}
		}
	}
	return nil, "", "", fmt.Errorf("admin audit: %w", last)
}

// readAuditStream reads 4-byte length-prefixed entries to EOF.
func readAuditStream(r *bufio.Reader) ([][]byte, error) {
	var out [][]byte
	total := 0
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("truncated audit stream: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		total += int(n)
		if n == 0 || n > crypto.MaxAuditEntrySize || total > maxAuditFile {
			return nil, fmt.Errorf("audit stream: entry of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("truncated audit stream: %w", err)
		}
		out = append(out, b)
	}
}

func readAuditFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAuditStream(bufio.NewReader(f))
}

func writeAuditFile(path string, raw [][]byte) error {
	var buf bytes.Buffer
	var hdr [4]byte
	for _, b := range raw {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
		buf.Write(hdr[:])
		buf.Write(b)
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}
