package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"liaison/cluster"
	"liaison/cluster/pki"
)

// join adds this new node to the cluster of the nodes at cfg.Join (client
// addresses): it reads their /cluster/status to learn the members' Raft
// addresses, then asks a member over the cluster channel, where (with
// cluster TLS) its node certificate is what authorises it. It retries for up
// to a minute.
func join(cfg config, cn *cluster.Node, log *slog.Logger) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	scheme := "http"
	if cfg.ClientTLS {
		// The other nodes serve clients with certificates of the same CA.
		tc, err := pki.LoadClientTLS(cfg.TLSCA, "", "")
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: tc}
		scheme = "https"
	}
	deadline := time.Now().Add(time.Minute)
	var last error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		for _, a := range cfg.Join {
			peers, err := raftPeers(hc, scheme+"://"+a)
			if err != nil {
				last = fmt.Errorf("%s: %w", a, err)
				if certificateRefused(err) {
					return fmt.Errorf("join refused: %w", last)
				}
				continue
			}
			for _, p := range peers {
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				err := cn.JoinVia(ctx, p)
				cancel()
				if err == nil {
					log.Info("joined the cluster", "via", a, "raft_peer", p)
					return nil
				}
				last = fmt.Errorf("%s (raft %s): %w", a, p, err)
				if certificateRefused(err) {
					return fmt.Errorf("join refused: the cluster does not accept this node's certificate (or this node does not accept the cluster's): %w", last)
				}
			}
		}
		log.Warn("join attempt failed; retrying", "err", last)
		time.Sleep(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second))
	}
	return fmt.Errorf("could not join via %v: %w", cfg.Join, last)
}

// certificateRefused reports a TLS failure that retrying cannot fix: a
// certificate one side does not trust.
func certificateRefused(err error) bool {
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &unknown) || errors.Is(err, pki.ErrUntrusted) || errors.Is(err, pki.ErrNotNode)
}

// raftPeers returns the Raft addresses of a node's cluster, leader first.
func raftPeers(hc *http.Client, base string) ([]string, error) {
	resp, err := hc.Get(base + "/cluster/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("status: %s: %s", resp.Status, b)
	}
	var st cluster.StatusReport
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range st.Servers {
		if s.Leader {
			out = append([]string{s.Address}, out...)
		} else {
			out = append(out, s.Address)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no members listed")
	}
	return out, nil
}

// loopbackOnly allows cluster changes only from this machine: the policy
// when clients are not served over TLS, so there is no certificate to check.
func loopbackOnly(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("cluster changes are accepted only from loopback unless clients are served over TLS (--client-tls) with admin certificates")
	}
	return nil
}

// adminCertificate allows cluster changes from holders of an admin
// certificate of the cluster CA.
func adminCertificate(r *http.Request) error {
	kind, name, err := pki.PeerIdentity(r.TLS)
	if err != nil {
		return fmt.Errorf("an admin certificate of the cluster CA is required: %w", err)
	}
	if kind != pki.KindAdmin {
		return fmt.Errorf("%s %q is not an admin", kind, name)
	}
	return nil
}
