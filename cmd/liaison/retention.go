package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"liaison/cluster"
	"liaison/crypto"
)

// retentionFlags are the flags of `liaison admin retention`.
type retentionFlags struct {
	maxAge   string
	maxCount uint64
	clear    bool
	set      bool // any of them given
	fs       *flag.FlagSet
}

func (r *retentionFlags) register(fs *flag.FlagSet) {
	r.fs = fs
	fs.StringVar(&r.maxAge, "max-age", "", "remove entries older than this (e.g. 720h)")
	fs.Uint64Var(&r.maxCount, "max-count", 0, "keep at most this many newest entries")
	fs.BoolVar(&r.clear, "clear", false, "remove the operation's own policy (the relays' default applies)")
}

// retentionReport is what a node's /cluster/retention answers.
type retentionReport = cluster.RetentionReport

// adminRetention shows op's retention policy, or sets it when a flag was
// given, on the first relay of --relay that answers.
func adminRetention(ctx context.Context, e *env, hc *http.Client, op string, f *retentionFlags) error {
	f.fs.Visit(func(*flag.Flag) { f.set = true })
	if f.maxAge != "" {
		if d, err := time.ParseDuration(f.maxAge); err != nil || d < time.Second {
			return fmt.Errorf("%w: --max-age %q is not a duration of at least 1s (e.g. 720h)", errUsage, f.maxAge)
		}
	}
	if f.clear && (f.maxAge != "" || f.maxCount != 0) {
		return fmt.Errorf("%w: --clear goes alone", errUsage)
	}
	bases, err := adminBases(e)
	if err != nil {
		return err
	}
	var signer *crypto.Identity
	var body []byte
	var args map[string]string
	if f.set {
		if signer, err = e.adminSigner(); err != nil {
			return err
		}
		defer signer.Destroy()
		body, _ = json.Marshal(map[string]any{"op": op, "max_age": f.maxAge, "max_count": f.maxCount, "clear": f.clear})
		args = map[string]string{"op": op, "max_age": f.maxAge, "max_count": strconv.FormatUint(f.maxCount, 10), "clear": strconv.FormatBool(f.clear)}
	}
	var last error
	for _, base := range bases {
		var req *http.Request
		if f.set {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/cluster/retention", bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				if err := signAdminRequest(ctx, hc, req, base, signer, crypto.AdminActionRetention, args); err != nil {
					last = err
					continue
				}
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/cluster/retention?op="+url.QueryEscape(op), nil)
		}
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			last = httpFailure(resp)
			resp.Body.Close()
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest {
				break
			}
			continue
		}
		var rep retentionReport
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("admin retention: %s: %w", hostOf(base), err)
		}
		policy := "keep everything"
		switch {
		case rep.MaxAge != "" && rep.MaxCount > 0:
			policy = fmt.Sprintf("max age %s, max count %d", rep.MaxAge, rep.MaxCount)
		case rep.MaxAge != "":
			policy = "max age " + rep.MaxAge
		case rep.MaxCount > 0:
			policy = fmt.Sprintf("max count %d", rep.MaxCount)
		}
		source := "the relays' default"
		if rep.Custom {
			source = "its own"
		}
		fmt.Fprintf(e.stdout, "%s: %s (%s); entries %d to %d held on %s\n", rep.Op, policy, source, rep.First, rep.Last, hostOf(base))
		return nil
	}
	return fmt.Errorf("admin retention: %w", last)
}
