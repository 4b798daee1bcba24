package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"liaison/cluster"
	"liaison/crypto"
)

// parseAdmins reads the configured cluster admins. Each value is an
// identity token (what `liaison id export` prints), a file holding one, or
// an Ed25519 public key as 64 hex digits (named admin-<first 8 digits>).
func parseAdmins(values []string) ([]crypto.Admin, error) {
	var out []crypto.Admin
	for _, v := range values {
		a, err := parseAdmin(v)
		if err != nil {
			return nil, fmt.Errorf("admins: %q: %w", v, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAdmin(v string) (crypto.Admin, error) {
	v = strings.TrimSpace(v)
	if k, err := crypto.ParseAdminKey(v); err == nil {
		return crypto.Admin{Key: k, Name: "admin-" + v[:8]}, nil
	}
	text := v
	if !strings.HasPrefix(v, crypto.TokenPrefix) {
		b, err := os.ReadFile(v)
		if err != nil {
			return crypto.Admin{}, fmt.Errorf("not a public key (64 hex digits), a token or a readable token file: %w", err)
		}
		text = string(b)
	}
	t, err := crypto.ParseTokenString(text)
	if err != nil {
		return crypto.Admin{}, err
	}
	return crypto.Admin{Key: t.SigningKey, Name: t.Name}, nil
}

// setupAdmins writes the configured admins as the cluster's first admin
// list when this node founds the cluster (it was not told to join one) and
// the cluster has no list yet, and says in the log which policy holds.
func setupAdmins(cfg config, cn *cluster.Node, log *slog.Logger) {
	admins := cfg.admins
	if len(cfg.Join) > 0 {
		if len(admins) > 0 && cn.Admins() == nil {
			log.Warn("--admin is ignored on a node that joins a cluster: the first node's configuration sets the admins; use liaison admin admins add")
		}
	} else if len(admins) > 0 && cn.Admins() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := cn.BootstrapAdmins(ctx, admins)
		cancel()
		switch {
		case err == nil:
			log.Info("cluster admins bootstrapped from the configuration", "admins", len(admins))
		case errors.Is(err, cluster.ErrAdminsExist):
		default:
			log.Error("could not write the configured cluster admins; cluster changes stay open to any signed request from loopback (or an admin certificate) until an admin list exists", "err", err)
		}
	}
	if l := cn.Admins(); l != nil {
		if len(admins) > 0 && len(cfg.Join) == 0 && !sameAdmins(l, admins) {
			log.Info("the cluster's admin list differs from --admin, which only seeds a new cluster; change it with liaison admin admins add|remove")
		}
		log.Info("cluster changes need a request signed by a cluster admin", "admins", len(l.Admins), "admin_list_version", l.Seq)
		return
	}
	log.Warn("no cluster admins configured: cluster changes are accepted from loopback (or with an admin certificate under --client-tls) when signed by any identity; set --admin on the first node, or add one with liaison admin admins add")
}

func sameAdmins(l *crypto.AdminList, admins []crypto.Admin) bool {
	if len(l.Admins) != len(admins) {
		return false
	}
	for _, a := range admins {
		if !l.Contains(a.Key) {
			return false
		}
	}
	return true
}
