package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"liaison/cluster"
	"liaison/crypto"
)

// getAdmins reads the admin list from the first relay that answers.
func getAdmins(ctx context.Context, e *env, hc *http.Client) (string, *cluster.AdminsReport, error) {
	bases, err := adminBases(e)
	if err != nil {
		return "", nil, err
	}
	var last error
	for _, base := range bases {
		var rep cluster.AdminsReport
		if last = getJSON(ctx, hc, base, "/cluster/admins", "admin list", &rep); last == nil {
			return base, &rep, nil
		}
	}
	return "", nil, fmt.Errorf("no relay answered: %w", last)
}

// adminAdmins runs admin admins list|add|remove.
func adminAdmins(ctx context.Context, e *env, hc *http.Client, pos []string, name string) error {
	if len(pos) == 0 {
		return fmt.Errorf("%w: admin admins list|add|remove", errUsage)
	}
	base, rep, err := getAdmins(ctx, e, hc)
	if err != nil {
		return err
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		if len(rep.Admins) == 0 {
			fmt.Fprintln(e.stdout, "no cluster admins: cluster changes are accepted from loopback (or with an admin certificate) signed by any identity")
			return nil
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "FINGERPRINT\tNAME\tKEY\n")
		for _, a := range rep.Admins {
			fmt.Fprintf(w, "%s\t%s\t%s\n", a.Fingerprint, sanitize(a.Name), a.Key)
		}
		fmt.Fprintf(w, "(admin list version %d, head %s)\n", rep.Seq, rep.Head[:16])
		return w.Flush()
	case pos[0] == "add" && len(pos) == 2:
		a, err := parseAdminArg(pos[1])
		if err != nil {
			return err
		}
		if name != "" {
			a.Name = name
		}
		args := map[string]string{"key": crypto.AdminKeyHex(a.Key), "name": a.Name, "prev": rep.Head}
		return postAdmins(ctx, e, hc, base, crypto.AdminActionAdminsAdd, "add", args, "added "+a.Name)
	case pos[0] == "remove" && len(pos) == 2:
		who, err := findAdmin(rep, pos[1])
		if err != nil {
			return err
		}
		args := map[string]string{"key": who.Key, "prev": rep.Head}
		return postAdmins(ctx, e, hc, base, crypto.AdminActionAdminsRemove, "remove", args, "removed "+who.Name)
	}
	return fmt.Errorf("%w: admin admins list | add TOKEN|FILE|KEY [--name NAME] | remove FINGERPRINT|NAME|KEY", errUsage)
}

// postAdmins asks the node at base to change the admin list: the body is
// args (what the request signed for action covers) with "action": verb.
func postAdmins(ctx context.Context, e *env, hc *http.Client, base, action, verb string, args map[string]string, done string) error {
	signer, err := e.adminSigner()
	if err != nil {
		return err
	}
	defer signer.Destroy()
	body := maps.Clone(args)
	body["action"] = verb
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/cluster/admins", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := signAdminRequest(ctx, hc, req, base, signer, action, args); err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", action, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: %w", action, httpFailure(resp))
	}
	fmt.Fprintf(e.stdout, "%s: done\n", sanitize(done))
	return nil
}

// parseAdminArg reads an identity token, a token file or a hex public key.
func parseAdminArg(v string) (crypto.Admin, error) {
	if k, err := crypto.ParseAdminKey(v); err == nil {
		return crypto.Admin{Key: k, Name: "admin-" + v[:8]}, nil
	}
	text := v
	if !strings.HasPrefix(v, crypto.TokenPrefix) {
		b, err := os.ReadFile(v)
		if err != nil {
			return crypto.Admin{}, fmt.Errorf("%w: %q is not a token, a token file or a public key (64 hex digits)", errUsage, v)
		}
		text = string(b)
	}
	t, err := crypto.ParseTokenString(text)
	if err != nil {
		return crypto.Admin{}, err
	}
	return crypto.Admin{Key: t.SigningKey, Name: t.Name}, nil
}

// findAdmin picks one admin by key, fingerprint (prefix, spaces ignored)
// or name.
func findAdmin(rep *cluster.AdminsReport, who string) (cluster.AdminReport, error) {
	norm := strings.ReplaceAll(who, " ", "")
	var found []cluster.AdminReport
	for _, a := range rep.Admins {
		if a.Key == strings.ToLower(who) || a.Name == who || (len(norm) >= 5 && strings.HasPrefix(strings.ReplaceAll(a.Fingerprint, " ", ""), norm)) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return cluster.AdminReport{}, fmt.Errorf("no cluster admin matches %q", who)
	}
	return cluster.AdminReport{}, fmt.Errorf("%q matches %d admins; give the key", who, len(found))
}
